"""A bad node URL ends in one line naming the variable and what was seen, with the
URL's key never printed: real sockets and HTTP servers on 127.0.0.1 stand in for a
node that is down, silent, speaks plain HTTP, refuses the key or rate-limits it, and
an anvil stands in for a node on the wrong chain."""

import socket

import pytest
from helpers_e2e import (
    SEPOLIA_CHAIN_ID,
    FakeNode,
    assert_user_error,
    block_number,
    free_port,
)

# Looks like a provider's API key; it must never reach the terminal.
FAKE_KEY = "abcdef0123456789abcdef0123456789"
SEPOLIA_CHAIN_ID_HEX = hex(SEPOLIA_CHAIN_ID)


@pytest.fixture
def fake_node():
    """Starts FakeNode servers; closes each afterwards."""
    nodes = []

    def start(respond):
        nodes.append(FakeNode(respond))
        return nodes[-1].port

    yield start
    for node in nodes:
        node.close()


@pytest.fixture
def silent_port():
    """A port whose socket accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def run_with_node_url(ape_run, url, *arguments, network="sepolia"):
    return ape_run("deploy", "--network", network, *arguments,
                   env={"SEPOLIA_RPC_URL": url, "SENTINEL_NODE_TIMEOUT_SECONDS": "1"})


def assert_one_line_without_key(result, *fragments):
    line = assert_user_error(result, *fragments)
    assert FAKE_KEY not in result.stdout + result.stderr
    return line


def test_no_node_at_the_url__connection_refused(ape_run):
    result = run_with_node_url(ape_run, f"http://127.0.0.1:{free_port()}/v2/{FAKE_KEY}")
    line = assert_one_line_without_key(result, "connection refused", "check the URL")
    assert line.startswith("Error: SEPOLIA_RPC_URL=http://127.0.0.1:")
    assert "/v2/***" in line


def test_local_chain_url_with_no_node__names_ape_foundry_host(ape_run):
    url = f"http://127.0.0.1:{free_port()}"
    result = ape_run("deploy", "--network", "local", env={"APE_FOUNDRY_HOST": url})
    assert_user_error(result, f"APE_FOUNDRY_HOST={url}: connection refused")


def test_node_that_never_answers__times_out(ape_run, silent_port):
    result = run_with_node_url(ape_run, f"http://127.0.0.1:{silent_port}/v2/{FAKE_KEY}")
    assert_one_line_without_key(result, "SEPOLIA_RPC_URL=", "no answer within 1 s", "SENTINEL_NODE_TIMEOUT_SECONDS")


def test_https_url_to_a_plain_http_node__tls_error(ape_run, fake_node):
    port = fake_node(lambda method: (200, SEPOLIA_CHAIN_ID_HEX))
    result = run_with_node_url(ape_run, f"https://127.0.0.1:{port}/v2/{FAKE_KEY}")
    assert_one_line_without_key(result, "SEPOLIA_RPC_URL=https://", "TLS handshake failed", "http:// versus https://")


@pytest.mark.parametrize(
    "status, fragments",
    [
        (401, ("HTTP 401 Unauthorized", "check the API key")),
        (403, ("HTTP 403 Forbidden", "check the API key")),
        (429, ("HTTP 429 Too Many Requests", "rate-limiting")),
        (404, ("HTTP 404 Not Found", "JSON-RPC endpoint")),
        (200, ("eth_chainId failed: method not found", "a node of an Ethereum network")),
    ],
)
def test_provider_refuses__what_it_answered_named(ape_run, fake_node, status, fragments):
    port = fake_node(lambda method: (status, None))
    result = run_with_node_url(ape_run, f"http://127.0.0.1:{port}/v2/{FAKE_KEY}?apikey={FAKE_KEY}")
    assert_one_line_without_key(result, "SEPOLIA_RPC_URL=", *fragments)


@pytest.mark.parametrize("network", ["sepolia", "sepolia-fork"])
def test_node_on_another_chain__refused_before_any_transaction(ape_run, start_anvil, network):
    url = start_anvil()  # anvil's own chain id, 31337
    result = run_with_node_url(ape_run, f"{url}/?apikey={FAKE_KEY}", network=network)
    assert_one_line_without_key(result, "SEPOLIA_RPC_URL=", "chain id 31337",
                                "data/networks/sepolia.yaml expects 11155111")
    assert block_number(url) == 0


def test_node_fails_after_the_check__ape_error_in_one_line(ape_run, fake_node):
    # The first request (the project's check) is answered; Ape's own requests are
    # rate-limited, so Ape finds no node: its error still ends in one clean line.
    answered = []

    def respond(method):
        answered.append(method)
        return (200, SEPOLIA_CHAIN_ID_HEX) if len(answered) == 1 else (429, None)

    port = fake_node(respond)
    result = run_with_node_url(ape_run, f"http://127.0.0.1:{port}/v2/{FAKE_KEY}?apikey={FAKE_KEY}")
    assert_one_line_without_key(result, "SEPOLIA_RPC_URL=", "No (supported) node found")


def test_ape_logs_the_node_it_connects_to__without_the_key(ape_run, fake_node):
    # Ape logs a Geth node's URL with the query kept; the project's log filter redacts it.
    answers = {"eth_chainId": SEPOLIA_CHAIN_ID_HEX, "web3_clientVersion": "Geth/v1.14.0", "eth_getCode": "0x"}
    port = fake_node(lambda method: (200, answers.get(method)))
    result = run_with_node_url(ape_run, f"http://127.0.0.1:{port}/?apikey={FAKE_KEY}")
    output = result.stdout + result.stderr
    assert "Connecting to existing Geth node at" in output
    assert_one_line_without_key(result, "no contract code")


def test_debug_verbosity__shows_the_traceback_still_without_the_key(ape_run):
    result = run_with_node_url(ape_run, f"http://127.0.0.1:{free_port()}/v2/{FAKE_KEY}", "-v", "DEBUG")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Traceback" in output and "ConnectionRefusedError" in output
    assert FAKE_KEY not in output
