"""redact_url / redact_text: a key anywhere in a node URL never survives, and a URL
without one comes back unchanged."""

import logging
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keepers.base.redact import (
    REDACTED,
    UrlRedactingFilter,
    looks_like_key,
    redact_text,
    redact_url,
)

HOSTS = st.sampled_from(["127.0.0.1", "localhost", "eth-sepolia.g.alchemy.com", "sepolia.infura.io",
                         "rpc.ankr.com", "[::1]"])
PORTS = st.one_of(st.just(""), st.integers(1, 65535).map(lambda port: f":{port}"))
# Path words and parameter names providers use: short, never keys.
WORDS = st.sampled_from(["v2", "v3", "rpc", "eth_sepolia", "sepolia", "ethereum-sepolia", "api", "chain", "network"])


@st.composite
def keys(draw):
    """API keys as providers issue them: 16-64 URL-safe characters, a digit among them."""
    body = draw(st.text(string.ascii_letters + string.digits + "-_", min_size=15, max_size=63))
    position = draw(st.integers(0, len(body)))
    return body[:position] + draw(st.sampled_from(string.digits)) + body[position:]


@st.composite
def urls_with_a_key(draw):
    key = draw(keys())
    host, port = draw(HOSTS), draw(PORTS)
    words = draw(st.lists(WORDS, max_size=3))
    place = draw(st.sampled_from(["path", "query", "secret-named query", "userinfo", "host label"]))
    path = "/" + "/".join(words)
    if place == "path":
        url = f"https://{host}{port}{path}/{key}"
    elif place == "query":
        url = f"https://{host}{port}{path}?{draw(WORDS)}={key}"
    elif place == "secret-named query":
        # Any value of a parameter named like a key is secret, short or not.
        key = key[: draw(st.integers(4, len(key)))]
        url = f"https://{host}{port}{path}?chain=1&{draw(st.sampled_from(['apikey', 'token', 'api_key']))}={key}"
    elif place == "userinfo":
        url = f"https://user:{key}@{host}{port}{path}"
    else:
        url = f"https://{key.lower().replace('_', '-')}.rpc.example{port}{path}"
        key = key.lower().replace("_", "-")
    return url, key, port


@st.composite
def urls_without_a_key(draw):
    words = draw(st.lists(WORDS, max_size=4))
    query = draw(st.lists(st.tuples(WORDS, st.sampled_from(["1", "sepolia", "true"])), max_size=2))
    url = f"{draw(st.sampled_from(['http', 'https', 'ws']))}://{draw(HOSTS)}{draw(PORTS)}"
    if words:
        url += "/" + "/".join(words)
    if query:
        url += "?" + "&".join(f"{name}={value}" for name, value in query)
    return url


@given(urls_with_a_key())
def test_a_key_anywhere__never_survives__and_the_rest_stays(case):
    url, key, port = case
    redacted = redact_url(url)
    assert key not in redacted
    assert REDACTED in redacted
    assert redacted.startswith("https://") and port in redacted
    assert redact_url(redacted) == redacted


@given(urls_without_a_key())
def test_url_without_a_key__unchanged(url):
    assert redact_url(url) == url


@given(urls_with_a_key(), st.sampled_from(["No node found on '{}'.", "{}: connection refused", "({})", "see {}."]))
def test_text__every_url_in_it_redacted_and_the_sentence_kept(case, sentence):
    url, key, _ = case
    text = redact_text(sentence.format(url))
    assert key not in text
    assert text.startswith(sentence.split("{}")[0]) and text.endswith(sentence.split("{}")[1])


@given(keys())
def test_text__a_known_urls_key_removed_where_it_appears_alone(key):
    # urllib3 prints only the path: "Max retries exceeded with url: /v2/<key>".
    message = f"Max retries exceeded with url: /v2/{key} (Caused by ConnectionRefusedError)"
    assert key not in redact_text(message, [f"https://node.example/v2/{key}"])


@pytest.mark.parametrize(
    "part, is_key",
    [
        ("9aa3d95b3bc440fa88ea12eaa4456161", True),   # Infura-style hex
        ("AbCdEfGhIjKlMnOpQrStUvWxYz012345", True),   # Alchemy-style
        ("abcdefghijklmnopqrstuvwxyzabcdefgh", True),  # 34 letters: long enough without a digit
        ("ethereum-sepolia", False),
        ("eth_sepolia", False),
        ("v2", False),
        ("0123456789abcde", False),                   # 15 characters
        ("not/a/key with spaces 0123456789", False),
    ],
)
def test_looks_like_key(part, is_key):
    assert looks_like_key(part) is is_key


def test_not_a_url__key_like_runs_redacted():
    assert redact_url("127.0.0.1:8545/v2/0123456789abcdef0123") == f"127.0.0.1:8545/v2/{REDACTED}"


def test_log_filter__redacts_the_message_and_its_arguments():
    record = logging.LogRecord("ape", logging.INFO, __file__, 1, "Connecting to %s.", ("https://h/?key=s3cr3t",), None)
    assert UrlRedactingFilter().filter(record)
    assert record.getMessage() == f"Connecting to https://h/?key={REDACTED}."
