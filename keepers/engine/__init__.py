"""The live decision loop: one user's cycle, the write-ahead trade journal, the risk
manager over the store, price bars, positions and the portfolio view, start-up checks,
the scheduler and the crash checkpoints. May import base, settings, persistence and
chain; never the observers (watch) or the views, which it reaches through hooks."""
