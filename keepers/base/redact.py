"""Node URLs with their secrets taken out, for everything the project prints or stores.

Providers put the API key in the URL: a path segment (`/v2/<key>`, `/v3/<key>`), a
query value (`?apikey=<key>`), a host label (`<key>.rpc.example`) or the user info
(`user:password@`). ``redact_url`` replaces each part that looks like a key with
``***`` and keeps the rest (scheme, host, port, short path words such as `v2` or
`eth_sepolia`), so a reader still sees which node was meant.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

REDACTED = "***"

# A key is a long run of token characters: API keys, JWT parts, base64 and hex.
# Words in a path (`ethereum-sepolia-rpc`) can be long too but carry no digit; a run
# of 32 characters or more counts as a key even without one.
_KEY = re.compile(r"[A-Za-z0-9_\-+/=~.%]+")
_MIN_KEY_LENGTH = 16
_MIN_DIGITLESS_KEY_LENGTH = 32
# Query parameters whose value is secret whatever it looks like.
_SECRET_PARAMETER = re.compile(r"key|token|secret|auth|pass|sig|credential|session", re.IGNORECASE)
# In text that is not a URL, candidate keys are runs between separators.
_TEXT_TOKEN = re.compile(r"[A-Za-z0-9_\-+=~.%]+")
# A URL inside free text (an error message): a scheme, then everything up to white
# space, a quote, an angle bracket or a parenthesis, not ending in punctuation that
# belongs to the sentence. Square brackets stay in: IPv6 hosts use them.
_URL_IN_TEXT = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s'\"<>(){}]*[^\s'\"<>(){}.,:;!?]")


def looks_like_key(part: str) -> bool:
    """Whether one URL part (a path segment, host label or query value) looks like an
    API key: at least 16 token characters with a digit among them, or at least 32."""
    if len(part) < _MIN_KEY_LENGTH or not _KEY.fullmatch(part):
        return False
    return len(part) >= _MIN_DIGITLESS_KEY_LENGTH or any(character.isdigit() for character in part)


def redact_url(url: str) -> str:
    """``url`` with its user info and every key-like host label, path segment, query
    value and fragment replaced by ``***`` (and the value of any query parameter whose
    name says key, token, secret, ...). Text that is not a URL has its key-like runs
    replaced. Idempotent; a URL without secrets comes back unchanged."""
    return _Redaction(url).redacted


def redact_text(text: str, urls: Iterable[str] = ()) -> str:
    """``text`` (an error message, a log line, a traceback) with every URL in it
    redacted, and every secret part of ``urls`` removed wherever it appears alone
    (HTTP libraries print a URL's path or query without the rest)."""
    secrets = {secret for url in urls for secret in _Redaction(url).secrets}
    for secret in sorted(secrets, key=len, reverse=True):  # a longer secret may contain a shorter one
        text = text.replace(secret, REDACTED)
    return _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), text)


class UrlRedactingFilter(logging.Filter):
    """A logging filter that redacts every URL in a record's message; add it to a
    logger (or handler) whose messages may carry a node URL."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrites the record's message with its URLs redacted; never drops a record."""
        record.msg = redact_text(record.getMessage())
        record.args = ()
        return True


class _Redaction:
    """One URL taken apart: ``redacted`` is the URL without its secrets, ``secrets``
    the parts that were replaced."""

    def __init__(self, url: str):
        self.secrets: list[str] = []
        try:
            parts = urlsplit(url)
        except ValueError:  # e.g. an unbalanced IPv6 bracket
            parts = None
        if parts is None or not parts.scheme or not parts.netloc:
            self.redacted = _TEXT_TOKEN.sub(lambda match: self._part(match.group(0)), url)
            return
        query = "&".join(self._parameter(parameter) for parameter in parts.query.split("&")) if parts.query else ""
        self.redacted = urlunsplit(
            (
                parts.scheme,
                self._netloc(parts.netloc),
                "/".join(self._part(segment) for segment in parts.path.split("/")),
                query,
                self._part(parts.fragment),
            )
        )

    def _hide(self, secret: str) -> str:
        self.secrets.append(secret)
        return REDACTED

    def _part(self, part: str) -> str:
        return self._hide(part) if looks_like_key(part) else part

    def _netloc(self, netloc: str) -> str:
        userinfo, at, hostport = netloc.rpartition("@")
        # User info is a credential whatever it looks like.
        prefix = self._hide(userinfo) + at if at else ""
        if hostport.startswith("["):  # an IPv6 literal: short hex groups, never a key
            return prefix + hostport
        host, colon, port = hostport.partition(":")
        return prefix + ".".join(self._part(label) for label in host.split(".")) + colon + self._part(port)

    def _parameter(self, parameter: str) -> str:
        name, equals, value = parameter.partition("=")
        if value and (_SECRET_PARAMETER.search(name) or looks_like_key(value)):
            return self._part(name) + equals + self._hide(value)
        return self._part(name) + equals + value
