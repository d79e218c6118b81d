"""The live side of QIE Sentinel: configuration, persistence, market data, execution."""

from pathlib import Path

# The repository: data/, node_modules/ and the deployment records live under it.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
