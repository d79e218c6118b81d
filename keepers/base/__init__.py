"""The ground floor: the project's errors, token units, secret redaction, retries and
clocks. Imports nothing of keepers/ (but the package root); everything may import it."""
