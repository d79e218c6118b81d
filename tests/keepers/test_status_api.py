"""The status API and page over a real SQLite store (rows written through the store's
own API), served by the real server on a free port; the page in a real headless
Chromium (Debian's chromium and chromium-driver, driven by Selenium). The controls'
effect on a real keeper cycle: tests/keepers/test_status_controls.py."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import yaml
from helpers_browser import console_errors, foreign_requests
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from keepers.base.clock import now_utc
from keepers.base.errors import SentinelError
from keepers.engine.positions import apply_trade, position_row, stored_sleeves
from keepers.engine.startup import user_strategies
from keepers.persistence.store import Store
from keepers.persistence.tables import (
    INTENT,
    MINED,
    CycleRow,
    LockRow,
    SignalRow,
    TradeRow,
)
from keepers.settings.keeper import load_keeper_config
from keepers.settings.network import load_network_spec, spec_path_for
from keepers.watch.api import serving_api
from keepers.watch.api_data import StatusData
from strategies.engine import Sleeve

DAY0 = datetime(2024, 9, 1, tzinfo=UTC)
TOKEN = "s3cret-status-token-0123"
USERS = [{"id": user, "test_account": account, "tokens": ["WETH"], "sizing": {"quote_amount": 1000}}
         for user, account in (("alice", 3), ("bob", 4))]


def add_cycle(store: Store, user: str, day: int, value: float, trade_side: str | None = None) -> None:
    """One cycle of ``user`` on ``day`` (vault ``value``), with a mined WETH trade if a side is given."""
    bar = DAY0 + timedelta(days=day)
    if trade_side is not None:
        trade_id = f"0x{user}{day:04d}".ljust(66, "0")
        buying = trade_side == "BUY"
        store.add_trade_intent(TradeRow(
            trade_id=trade_id, user_id=user, user_address="0x" + "1" * 40, keeper_id="k", chain_id=31337,
            asset="WETH", strategy="bollinger", side=trade_side, bar_time=bar, token_in="0x" + "2" * 40,
            token_out="0x" + "3" * 40, amount_in=1_000 * 10**6 if buying else 4 * 10**17, status=INTENT,
            replaced_tx_hashes=[], created_at=now_utc(), updated_at=now_utc()))
        mined = store.update_trade(trade_id, status=MINED, amount_out=4 * 10**17 if buying else 1_100 * 10**6,
                                   tx_hash="0x" + "ab" * 32)
        # The position the journal writes with a mined trade (the same transaction there).
        sleeve = stored_sleeves(store, user).get(("WETH", "bollinger"), Sleeve())
        apply_trade(sleeve, mined, 6)
        store.update_trade(trade_id, position_row(user, "WETH", "bollinger", sleeve))
        store.record_decisions([SignalRow(user_id=user, asset="WETH", strategy="bollinger", bar_time=bar,
                                     action=trade_side, confidence=0.8, reason="close under the lower band",
                                     indicators={}, created_at=now_utc())])
    store.add_cycle(CycleRow(
        keeper_id="k", user_id=user, started_at=now_utc(), block_time=bar + timedelta(hours=1), duration_seconds=0.05,
        rpc_calls=1, signals=int(trade_side is not None), trades_ok=int(trade_side is not None), trades_failed=0,
        blocks=0, memory_mb=100.0, vault_value_quote=value, position_value_quote=0.0, error=None))


@pytest.fixture
def data(tmp_path):
    """A store with five days of two users (alice trades, bob's kill switch is on) and a live heartbeat."""
    (tmp_path / "users.yaml").write_text(yaml.safe_dump({"users": USERS}))
    config_file = tmp_path / "keeper.yaml"
    config_file.write_text(yaml.safe_dump({"users_file": str(tmp_path / "users.yaml")}))
    config = load_keeper_config(config_file, environ={})
    store = Store.open(f"sqlite:///{tmp_path / 'sentinel.db'}")
    # The ETH bars the keeper decided on: 60 days up to day 6, a slow wave (every indicator warmed up).
    store.add_bars("ETH", 86_400, [(DAY0 + timedelta(days=day), *[2_500 + 100 * math.sin(day / 5)] * 4)
                                   for day in range(-54, 7)], "backfill")
    for day in range(5):
        add_cycle(store, "alice", day, 10_000 + 100 * day, trade_side="BUY" if day == 1 else None)
        add_cycle(store, "bob", day, 10_000 - 300 * day)
    store.save_lock(LockRow(user_id="bob", rule="kill_switch", asset="*", until=None,
                            reason="vault value 8,800.00 is 12.0% below its peak", created_at=now_utc()))
    store.beat("k", interval_seconds=60, pid=1, host="test", started_at=now_utc())
    spec = load_network_spec(spec_path_for("local"))
    yield StatusData(store=store, config=config, decimals=spec.decimals, quote=spec.quote.symbol)
    store.close()


def get(url: str, token: str | None = None):
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)


def post(url: str, body: object, token: str | None = TOKEN) -> dict:
    """POSTs ``body`` as JSON (bytes as they are); returns the answer's JSON."""
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=payload, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)


def refused(url: str, body: object, token: str | None = TOKEN) -> tuple[int, str]:
    """The status and error line of a POST the API refuses."""
    with pytest.raises(urllib.error.HTTPError) as answer:
        post(url, body, token)
    return answer.value.code, json.load(answer.value)["error"]


def test_the_api_serves_the_store(data):
    for rule, days in (("cooldown", 3), ("loss_streak", 9)):  # ended / still on at alice's last cycle (day 4)
        data.store.save_lock(LockRow(user_id="alice", rule=rule, asset="WETH", until=DAY0 + timedelta(days=days),
                                     reason=rule, created_at=now_utc()))
    with serving_api(data, "127.0.0.1:0", None, print) as server:
        base = f"http://127.0.0.1:{server.server_port}"
        users = {user["id"]: user for user in get(f"{base}/api/users")}
        trades = get(f"{base}/api/trades?user=alice&limit=5")
        equity = get(f"{base}/api/users/bob/equity")
        health = get(f"{base}/api/health")
        assert get(f"{base}/api/admin-operations") == []
        assert get(f"{base}/api/signals?user=alice")[0]["action"] == "BUY"
        with pytest.raises(urllib.error.HTTPError) as missing:
            get(f"{base}/api/nothing")
    assert missing.value.code == 404
    assert users["alice"]["vault_value_quote"] == 10_400
    assert users["alice"]["positions"] == [{"asset": "WETH", "strategy": "bollinger", "amount": 0.4, "cost_quote": 1000}]
    assert [lock["kill_switch"] for lock in users["bob"]["locks"]] == [True]
    assert [lock["rule"] for lock in users["alice"]["locks"]] == ["loss_streak"]  # locks end in chain time
    assert [(t["side"], t["amount_in"], t["token_in"], t["amount_out"], t["token_out"]) for t in trades] == [
        ("BUY", 1000, "USDC", 0.4, "WETH")]
    assert [point["value"] for point in equity] == [10_000, 9_700, 9_400, 9_100, 8_800]
    # The peak so far, and the drawdown kill switch's level 25% under it (the default).
    assert {point["peak"] for point in equity} == {10_000} and equity[-1]["kill_level"] == pytest.approx(7_500)
    assert health["alive"] is True and health["keepers"][0]["keeper_id"] == "k"


def test_the_chart_data_holds_the_bars_the_trades_and_the_strategies_own_indicators(data):
    with serving_api(data, "127.0.0.1:0", None, print) as server:
        chart = get(f"http://127.0.0.1:{server.server_port}/api/users/alice/chart?token=WETH")
        with pytest.raises(urllib.error.HTTPError) as not_traded:
            get(f"http://127.0.0.1:{server.server_port}/api/users/alice/chart?token=WBTC")
    assert not_traded.value.code == 404
    bars = data.store.bars("ETH", 86_400)
    assert [bar["time"] for bar in chart["bars"]] == [int(bar.bar_time.timestamp()) for bar in bars]
    (trade,) = chart["trades"]
    assert (trade["time"], trade["side"], trade["amount"], trade["price"], trade["reason"]) == (
        int((DAY0 + timedelta(days=1)).timestamp()), "BUY", 0.4, 2_500, "close under the lower band")
    # The lines are the strategies' own computation (the registry's, with the strategies file's parameters).
    closes = np.array([bar.close for bar in bars])
    expected = {(s.name, name): values for s in user_strategies(data.config, data.config.users)[("alice", "WETH")]
                for name, values in s.signals(closes).indicators.items()}
    lines = {(line["strategy"], line["name"]): line for line in chart["indicators"]}
    assert set(lines) == {("bollinger", "middle"), ("bollinger", "upper"), ("bollinger", "lower"), ("rsi_sma", "sma"),
                          ("rsi_sma", "rsi"), ("macd", "macd"), ("macd", "signal"), ("macd", "histogram")}
    for key, line in lines.items():
        assert line["pane"] == ("price" if key[1] in ("middle", "upper", "lower", "sma") else "lower")
        assert [point["value"] for point in line["points"]] == [v for v in expected[key] if not math.isnan(v)]
    assert lines[("rsi_sma", "sma")]["points"] == []  # a 200-bar SMA over 61 bars: still warming up


def test_a_token_guards_the_api_but_not_the_page(data):
    with serving_api(data, "127.0.0.1:0", TOKEN, print) as server:
        base = f"http://127.0.0.1:{server.server_port}"
        for wrong in (None, "not-the-token"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                get(f"{base}/api/users", wrong)
            assert refused.value.code == 401
        assert len(get(f"{base}/api/users", TOKEN)) == 2
        with urllib.request.urlopen(f"{base}/", timeout=10) as page:
            assert b"<title>QIE Sentinel status</title>" in page.read()
            assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")


def test_a_non_local_bind_needs_a_token(tmp_path):
    (tmp_path / "users.yaml").write_text(yaml.safe_dump({"users": USERS}))
    config_file = tmp_path / "keeper.yaml"
    config_file.write_text(yaml.safe_dump({"users_file": str(tmp_path / "users.yaml"), "api": "0.0.0.0:8787"}))
    with pytest.raises(SentinelError, match=r"api: 0\.0\.0\.0:8787 is not a local address; set api_token") as refused:
        load_keeper_config(config_file, environ={})
    assert "\n" not in str(refused.value)
    environ = {"SENTINEL_API_TOKEN": TOKEN}
    assert load_keeper_config(config_file, environ=environ).settings.redacted()["api_token"] == "***"


MARKERS = "return window.statusPage.priceCharts.get('alice/WETH').markers.markers()"


def test_the_page_charts_trades_and_decisions_and_follows_new_cycles(data, browser):
    blocked_bar = DAY0 + timedelta(days=3)
    data.store.record_decisions([SignalRow(user_id="alice", asset="WETH", strategy="macd", bar_time=blocked_bar,
                                      action="BUY", confidence=0.6, reason="MACD crossed over its signal",
                                      indicators={"macd": 1.5, "signal": 1.2}, created_at=now_utc(),
                                      acted=True, outcome="blocked by cooldown: 2 trades in 24 h")])
    with serving_api(data, "127.0.0.1:0", TOKEN, print) as server:
        origin = f"http://127.0.0.1:{server.server_port}"
        browser.get(f"{origin}/?token={TOKEN}&refresh=1")
        wait = WebDriverWait(browser, 20)
        wait.until(lambda page: len(page.find_elements(By.CSS_SELECTOR, "section.user")) == 2)
        wait.until(lambda page: page.execute_script(MARKERS))
        alice = browser.find_element(By.ID, "user-alice")
        assert len(alice.find_elements(By.CSS_SELECTOR, "tr.trade")) == 1
        assert "USDC → 0.4000 WETH" in alice.text and "10,400.00" in alice.text
        assert "KILL SWITCH" in browser.find_element(By.ID, "user-bob").text
        assert browser.find_element(By.ID, "health").text == "keepers alive (1)"
        # The chart's own data: the store's bars, its trade as a marker, the indicator lines.
        day1 = int((DAY0 + timedelta(days=1)).timestamp())
        assert [(m["time"], m["text"], m["position"]) for m in browser.execute_script(MARKERS)] == [
            (day1, "BUY", "belowBar")]
        chart = "window.statusPage.priceCharts.get('alice/WETH')"
        assert browser.execute_script(f"return {chart}.candles.data().length") == 61
        assert "bollinger upper" in browser.execute_script(f"return [...{chart}.lines.keys()]")
        assert browser.execute_script(f"return {chart}.chart.panes().length") == 3  # price, RSI, MACD
        assert browser.execute_script("return window.statusPage.equityCharts.get('bob').kill.data().length") == 5
        # Hovering the trade's bar shows what it was.
        box = alice.find_element(By.CSS_SELECTOR, ".price .chart")
        x = browser.execute_script(f"return {chart}.chart.timeScale().timeToCoordinate({day1})")
        ActionChains(browser).move_to_element_with_offset(box, int(x - box.size["width"] / 2), -40).perform()
        legend = alice.find_element(By.CSS_SELECTOR, ".price .legend")
        wait.until(lambda _: "BUY 0.4 WETH at 2,500 USDC" in legend.text)
        assert "bollinger · close under the lower band · bar 2024-09-02 00:00 UTC (mined)" in legend.text
        # The decisions, the one that did not trade with why.
        # Read in one script: the page redraws its tables every refresh, so rows found by one
        # call can be gone by the next (seen under load: a stale element).
        decisions = browser.execute_script(
            "return [...document.querySelectorAll('#user-alice tr.decision')].map(row => row.innerText)")
        assert "blocked by cooldown: 2 trades in 24 h" in decisions[0] and "macd 1.500" in decisions[0]
        assert "BUY trade" not in decisions[0] and "close under the lower band" in decisions[1]

        add_cycle(data.store, "alice", 5, 10_950, trade_side="SELL")  # the keeper's next cycle
        wait.until(lambda page: len(page.execute_script(MARKERS)) == 2)
        assert [m["text"] for m in browser.execute_script(MARKERS)] == ["BUY", "SELL"]
        assert len(browser.find_elements(By.CSS_SELECTOR, "#user-alice tr.trade")) == 2
        wait.until(lambda page: "10,950.00" in page.find_element(By.ID, "user-alice").text)  # its cycle row came last
        errors, foreign = console_errors(browser), foreign_requests(browser, origin)
    assert errors == [] and foreign == []


def test_a_write_without_the_token_is_refused_and_changes_nothing(data):
    locks_before = data.locks()
    with serving_api(data, "127.0.0.1:0", TOKEN, print) as server:
        kill = f"http://127.0.0.1:{server.server_port}/api/control/kill"
        for wrong in (None, "not-the-token", "ünicode-is-no-token"):
            assert refused(kill, {"user": "alice", "operator": "jane"}, wrong)[0] == 401
    with serving_api(data, "127.0.0.1:0", None, print) as server:  # no api_token: read-only, also on 127.0.0.1
        code, error = refused(f"http://127.0.0.1:{server.server_port}/api/control/kill",
                              {"user": "alice", "operator": "jane"}, None)
    assert (code, error) == (403, "this API is read-only: set api_token to use the controls")
    assert data.locks() == locks_before and data.store.control_actions() == []


def test_a_control_request_is_validated_with_an_error_naming_the_field(data):
    with serving_api(data, "127.0.0.1:0", TOKEN, print) as server:
        base = f"http://127.0.0.1:{server.server_port}/api/control"
        answers = [refused(f"{base}/{action}", body) for action, body in (
            ("kill", b"{not json"),
            ("kill", ["alice"]),
            ("kill", {"user": "alice"}),
            ("kill", {"user": "alice", "operator": "<script>"}),
            ("kill", {"user": "mallory", "operator": "jane"}),
            ("kill", {"user": "alice", "operator": "jane", "reason": "x" * 201}),
            ("resume", {"user": "alice", "operator": "jane", "rule": "cooldown"}),
            ("exit-now", {"user": "*", "token": "WETH", "operator": "jane"}),
            ("exit-now", {"user": "alice", "token": "DOGE", "operator": "jane"}),
        )]
        assert refused(f"{base}/liquidate", {"user": "alice", "operator": "jane"})[0] == 404
    assert {code for code, _ in answers} == {400}
    assert [error.split(":")[0] for _, error in answers] == [
        "body", "body", "operator", "operator", "user", "reason", "rule", "user", "token"]
    assert answers[4][1] == "user: no user 'mallory'; give one of alice, bob or \"*\" (every user)"
    assert answers[8][1] == "token: alice trades WETH, not 'DOGE'"
    assert all("\n" not in error for _, error in answers)
    assert data.store.control_actions() == []


def test_kill_resume_and_exit_requests_through_the_api_are_recorded_with_who_and_when(data):
    with serving_api(data, "127.0.0.1:0", TOKEN, print) as server:
        base = f"http://127.0.0.1:{server.server_port}"
        killed = post(f"{base}/api/control/kill", {"user": "alice", "operator": "jane", "reason": "odd fills"})
        assert [(lock["rule"], lock["reason"]) for lock in get(f"{base}/api/users", TOKEN)[0]["locks"]] == [
            ("kill_switch", "odd fills (by jane from 127.0.0.1) (engaged 2024-09-05T01:00:00+00:00)")]  # chain time
        post(f"{base}/api/control/kill", {"user": "*", "operator": "jane"})
        assert {lock["user"] for lock in data.locks() if lock["kill_switch"]} == {"alice", "bob", "*"}
        post(f"{base}/api/control/resume", {"user": "*", "operator": "ops bot"})
        resumed = post(f"{base}/api/control/resume", {"user": "alice", "operator": "jane"})
        exit_request = post(f"{base}/api/control/exit-now", {"user": "alice", "token": "WETH", "operator": "jane"})
        actions = get(f"{base}/api/control-actions?user=alice", TOKEN)
    assert {lock["user"] for lock in data.locks()} == {"bob"}  # bob's own switch stays
    assert (killed["status"], killed["outcome"]) == ("done", "alice: kill switch engaged.")
    assert resumed["outcome"] == "alice: cleared 1 kill_switch lock(s)."
    assert (exit_request["status"], exit_request["token"], exit_request["trade_id"]) == ("pending", "WETH", None)
    assert [(a["action"], a["operator"], a["client_address"]) for a in actions] == [
        ("exit_now", "jane", "127.0.0.1"), ("resume", "jane", "127.0.0.1"), ("kill", "jane", "127.0.0.1")]
