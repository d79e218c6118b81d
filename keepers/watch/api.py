"""The status API and page: `ape run keeper --api [HOST:PORT]`.

    GET /                          the status page (keepers/watch/status_page/, HTML + JS, the chart library vendored)
    GET /api/users                 each user: vault value, realised PnL, positions, locks, last cycle
    GET /api/users/<id>/equity     the user's vault value per cycle, its peak, the kill switch's level
    GET /api/users/<id>/chart?token=   bars, trades, the strategies' indicator lines of one token
    GET /api/trades?user=&limit=   newest trades first
    GET /api/signals?user=&limit=  newest strategy decisions first, with their outcomes
    GET /api/locks                 every lock and kill switch
    GET /api/health                heartbeats, the dead-man verdict, pending admin operations
    GET /api/admin-operations      scheduled admin operations, as the keeper last read them
    GET /api/metrics               this keeper's Prometheus samples as JSON
    GET /api/control-actions?user=&limit=   operators' actions, newest first
    POST /api/control/kill         {"user": ID or "*", "operator": NAME, "reason": TEXT}: engage a kill switch
    POST /api/control/resume       {"user": ID or "*", "operator": NAME}: clear it
    POST /api/control/exit-now     {"user": ID, "token": SYMBOL, "operator": NAME}: sell at the next cycle

The standard library's threading HTTP server is enough for a handful of routes on one
machine, and needs no dependency. Other methods are refused. When ``api_token`` is set
(required off localhost, see keepers/settings/keeper.py), every /api/ call needs
``Authorization: Bearer <token>``; the page's own files carry no data and stay open (the
page passes ``?token=`` from its address on to its calls, in that header: never a cookie,
so another site cannot make a browser send it). Without ``api_token`` the API is
read-only: every POST is refused, also on 127.0.0.1. What the controls do and record:
keepers/watch/controls.py.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from keepers import PROJECT_ROOT
from keepers.base.errors import SentinelError
from keepers.persistence.tables import EXIT_NOW, KILL, RESUME
from keepers.settings.keeper import api_address
from keepers.watch.api_data import StatusData, json_default
from keepers.watch.background import in_background
from keepers.watch.controls import action_json, carry_out, parse_request

logger = logging.getLogger("sentinel.api")

DEFAULT_API = "127.0.0.1:8787"
PAGE_DIR = Path(__file__).resolve().parent / "status_page"
# The chart library: npm's pinned lightweight-charts (package.json), its standalone build served from node_modules.
CHART_LIBRARY = PROJECT_ROOT / "node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.js"
PAGE_FILES = {"/": (PAGE_DIR / "index.html", "text/html"), "/app.js": (PAGE_DIR / "app.js", "text/javascript"),
              "/charts.js": (PAGE_DIR / "charts.js", "text/javascript"),
              "/style.css": (PAGE_DIR / "style.css", "text/css"),
              "/vendor/lightweight-charts.js": (CHART_LIBRARY, "text/javascript")}
DEFAULT_LIMIT, MAX_LIMIT = 50, 1000
MAX_BODY = 4096  # bytes: a control request is a few fields
CONTROLS = {"/api/control/kill": KILL, "/api/control/resume": RESUME, "/api/control/exit-now": EXIT_NOW}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def _routes(data: StatusData, query: dict[str, str]) -> dict[str, Callable[[], object]]:
    user = query.get("user") or None
    limit = min(int(query["limit"]), MAX_LIMIT) if query.get("limit", "").isdigit() else DEFAULT_LIMIT
    return {
        "/api/users": data.users,
        "/api/trades": lambda: data.trades(user, limit),
        "/api/signals": lambda: data.signals(user, limit),
        "/api/locks": data.locks,
        "/api/health": data.health,
        "/api/admin-operations": data.admin_operations,
        "/api/metrics": data.metrics,
        "/api/control-actions": lambda: [action_json(row) for row in data.store.control_actions(user, limit)],
    }


def _handler(data: StatusData, token: str | None) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            url = urlsplit(self.path)
            if url.path in PAGE_FILES:
                path, content_type = PAGE_FILES[url.path]
                if not path.is_file():
                    self._json(HTTPStatus.NOT_FOUND, {"error": f"{path.name} is missing: run `make setup` (npm ci)"})
                    return
                self._send(HTTPStatus.OK, path.read_bytes(), f"{content_type}; charset=utf-8")
                return
            if not url.path.startswith("/api/"):
                self._json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {url.path}"})
                return
            if not self._authorised():
                return
            query = {key: values[-1] for key, values in parse_qs(url.query).items()}
            parts = url.path.split("/")  # /api/users/<id>/equity | chart
            if len(parts) == 5 and parts[2] == "users" and parts[4] in ("equity", "chart"):
                view = partial(data.equity, parts[3]) if parts[4] == "equity" else partial(
                    data.chart, parts[3], query.get("token", ""))
            else:
                view = _routes(data, query).get(url.path)
            if view is None:
                self._json(HTTPStatus.NOT_FOUND, {"error": f"no such resource: {url.path}"})
                return
            try:
                self._json(HTTPStatus.OK, view())
            except (KeyError, SentinelError):  # a user (or a user's token) not configured
                self._json(HTTPStatus.NOT_FOUND, {"error": f"no such user or token: {url.path}?{url.query}"})
            except Exception:  # a store error answers 500 and is logged; the keeper goes on
                logger.exception("status API %s failed", url.path)
                self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "the store could not be read; see the log"})

        def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
            path = urlsplit(self.path).path
            action = CONTROLS.get(path)
            if action is None:
                self._json(HTTPStatus.NOT_FOUND, {"error": f"no such action: {path}"})
                return
            if token is None:
                self._json(HTTPStatus.FORBIDDEN, {"error": "this API is read-only: set api_token to use the controls"})
                return
            if not self._authorised():
                return
            length = self.headers.get("Content-Length", "")
            if not length.isdigit() or int(length) > MAX_BODY:
                self._json(HTTPStatus.BAD_REQUEST, {"error": f"body: send a JSON object of at most {MAX_BODY} bytes"})
                return
            try:
                body = json.loads(self.rfile.read(int(length)) or b"null")
                request = parse_request(action, body, data.config, self.client_address[0])
            except (ValueError, SentinelError) as error:  # ValueError: not JSON (or not UTF-8)
                message = str(error) if isinstance(error, SentinelError) else "body: not JSON; send a JSON object"
                self._json(HTTPStatus.BAD_REQUEST, {"error": message})
                return
            try:
                row = carry_out(request, data.store, data.config)
            except Exception:  # a store error answers 500 and is logged; the keeper goes on
                logger.exception("control %s failed", path)
                self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "the store could not be written; see the log"})
                return
            logger.warning("control: %s %s by %s from %s", row.action, row.user_id, row.operator, row.client_address)
            self._json(HTTPStatus.OK, action_json(row))

        def _authorised(self) -> bool:
            """Whether the call carries the API token (answered 401 if not); always, without one."""
            if token is None or hmac.compare_digest(self.headers.get("Authorization", "").encode(),
                                                         f"Bearer {token}".encode()):
                return True
            self._json(HTTPStatus.UNAUTHORIZED, {"error": "this API needs Authorization: Bearer <api_token>"})
            return False

        def _json(self, status: HTTPStatus, value: object) -> None:
            self._send(status, json.dumps(value, default=json_default).encode(), "application/json")

        def _send(self, status: HTTPStatus, payload: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in SECURITY_HEADERS.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - http.server's signature
            logger.debug(format, *args)

    return Handler


@contextmanager
def serving_api(data: StatusData, api: str | None, token: str | None,
                report: Callable[[str], None]) -> Iterator[ThreadingHTTPServer | None]:
    """Serves the API and page at ``api`` (HOST:PORT; None: not served) in a daemon thread
    while the block runs, and says where through ``report``."""
    if api is None:
        yield None
        return
    host, port = api_address(api)
    try:
        server = ThreadingHTTPServer((host, port), _handler(data, token))
    except OSError as error:
        raise SentinelError(f"api: cannot listen on {api} ({error.strerror}); choose a free port (0: any)") from None
    server.daemon_threads = True  # a slow browser never holds the keeper's exit
    with in_background(server):
        report(f"Status page: http://{host}:{server.server_port}/" + ("?token=<api_token>" if token else ""))
        yield server
