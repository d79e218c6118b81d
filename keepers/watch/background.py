"""HTTP servers that run in a daemon thread of the keeper process (the metrics exporter,
the status API), stopped with the block that runs them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from socketserver import BaseServer
from typing import TypeVar

Server = TypeVar("Server", bound=BaseServer)


@contextmanager
def in_background(server: Server, thread: threading.Thread | None = None) -> Iterator[Server]:
    """Serves ``server`` while the block runs: in ``thread`` when its library already
    started one, else in a new daemon thread; then shuts it down and joins the thread."""
    if thread is None:
        thread = threading.Thread(target=server.serve_forever, name=type(server).__name__, daemon=True)
        thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
