"""Read models for people: the keeper status and the trade report, and the terminal
tables `ape run keeper status | report` print. May import everything below them
(engine, chain, persistence, settings, base)."""
