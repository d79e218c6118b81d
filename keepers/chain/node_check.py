"""One JSON-RPC call to a node before Ape connects to it, so that a bad node URL ends
in one line saying which variable to fix and what was seen.

Ape cannot say this itself: it reports every failure (refused, TLS, HTTP 401/429) as
"No (supported) node found", waits up to 30 minutes for a node that accepts and never
answers, and prints the URL's query (where providers put keys). This check asks the
node for `eth_chainId` with a short timeout, through `requests` as web3 does (same
certificates, same proxy settings), and compares the answer with the chain id the
network file expects, before any transaction.
"""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Iterator

import requests

from keepers.base.errors import SentinelError
from keepers.base.redact import redact_text, redact_url
from keepers.settings.nodes import NODE_TIMEOUT_VARIABLE as TIMEOUT_VARIABLE
from keepers.settings.nodes import NodeEndpoint

DEFAULT_TIMEOUT_SECONDS = 10.0


def node_timeout_seconds() -> float:
    """How long the check waits for a node's answer (SENTINEL_NODE_TIMEOUT_SECONDS, 10 s)."""
    raw = os.environ.get(TIMEOUT_VARIABLE, str(DEFAULT_TIMEOUT_SECONDS))
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise SentinelError(f"{TIMEOUT_VARIABLE}={raw!r}: expected a positive number of seconds")
    return seconds


def check_node(endpoint: NodeEndpoint, expected_chain_id: int | None, expectation_source: str) -> None:
    """Asks the node at ``endpoint`` for its chain id. Raises SentinelError (variable,
    redacted URL, what was seen, the fix) unless it answers with ``expected_chain_id``
    (any chain id when None). URLs Ape does not reach over HTTP (ws://, IPC paths) are
    left to Ape."""
    if not endpoint.url.startswith(("http://", "https://")):
        return
    timeout = node_timeout_seconds()
    try:
        response = requests.post(
            endpoint.url,
            json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
            timeout=timeout,
        )
    except requests.RequestException as error:
        raise node_error(endpoint, *_describe_request_failure(error, timeout)) from error
    chain_id = _chain_id_from(endpoint, response)
    if expected_chain_id is not None and chain_id != expected_chain_id:
        raise node_error(
            endpoint,
            f"the node is on chain id {chain_id}, but {expectation_source} expects {expected_chain_id}",
            f"point {endpoint.variable} at a node of chain {expected_chain_id}",
        )


def node_error(endpoint: NodeEndpoint, seen: str, fix: str) -> SentinelError:
    """The one-line error for a node problem: variable, redacted URL, what was seen, fix."""
    return SentinelError(f"{endpoint.variable}={redact_url(endpoint.url)}: {seen}; {fix}")


def _chain_id_from(endpoint: NodeEndpoint, response: requests.Response) -> int:
    status = f"HTTP {response.status_code} {response.reason or ''}".strip()
    if response.status_code in (401, 403):
        raise node_error(endpoint, f"{status}: the provider refused the request", "check the API key in the URL")
    if response.status_code == 429:
        raise node_error(endpoint, f"{status}: the provider is rate-limiting this key",
                         "wait, or use a key or plan with a higher request limit")
    if not response.ok:
        raise node_error(endpoint, status, "check the URL: it must be the node's JSON-RPC endpoint")
    try:
        body = response.json()
        if "error" in body:
            message = redact_text(str(body["error"].get("message")), [endpoint.url])
            raise node_error(endpoint, f"eth_chainId failed: {message}",
                             "check the URL: it must be a node of an Ethereum network")
        return int(body["result"], 16)
    except (ValueError, TypeError, KeyError, AttributeError):
        raise node_error(endpoint, f"{status}, but the answer is not JSON-RPC",
                         "check the URL: it must be the node's JSON-RPC endpoint") from None


def _describe_request_failure(error: requests.RequestException, timeout: float) -> tuple[str, str]:
    """(what was seen, the fix) for a request that got no HTTP answer. Never uses the
    exception's text, which carries the full URL."""
    check_url = "check the URL and that the node is running"
    if isinstance(error, requests.exceptions.SSLError):
        reason = next((cause.reason for cause in _causes(error) if isinstance(cause, ssl.SSLError)), None)
        return (f"TLS handshake failed{f' ({reason})' if reason else ''}",
                "check http:// versus https:// and the node's certificate")
    if isinstance(error, requests.exceptions.Timeout):
        return f"no answer within {timeout:g} s", f"{check_url} (or raise {TIMEOUT_VARIABLE})"
    if isinstance(error, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                          requests.exceptions.InvalidSchema)):
        return "not a valid http(s):// URL", "check the URL"
    causes = list(_causes(error))
    if any(isinstance(cause, ConnectionRefusedError) for cause in causes):
        return "connection refused (no node listens there)", check_url
    if any(isinstance(cause, socket.gaierror) for cause in causes):
        return "host name not found", check_url
    return f"connection failed ({causes[-1].__class__.__name__})", check_url


def _causes(error: BaseException) -> Iterator[BaseException]:
    """``error`` and what it wraps: requests and urllib3 keep the cause in ``args`` or
    ``reason`` as well as in ``__cause__`` / ``__context__``."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        pending.extend(item for item in linked if isinstance(item, BaseException))
