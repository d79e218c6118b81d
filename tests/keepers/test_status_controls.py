"""The status page's controls on a real keeper: anvil with the deployed local market, a
SQLite store, the real API server and a headless Chromium. A kill from the page stops
the user's next cycle and shows the lock, resume clears it; "exit now" from the page
becomes the next cycle's SELL through the journal (reason "operator exit"), once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from ape import chain
from helpers_browser import confirm, console_errors, foreign_requests
from helpers_keeper import deploy_local_system, trade_events, user_entry
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from test_keeper_chain import backfill_dip, start

from keepers.engine.risk import RiskManager
from keepers.persistence.tables import DONE, MINED
from keepers.watch.api import serving_api
from keepers.watch.api_data import StatusData

TOKEN = "s3cret-status-token-0123"
USERS = [user_entry("alice", 3, ["WETH"]), user_entry("bob", 4, ["WBTC"])]


@pytest.fixture
def system(tmp_path):
    return deploy_local_system(tmp_path, USERS, f"sqlite:///{tmp_path / 'sentinel.db'}")


def card_text(session, user_id: str) -> str:
    return session.find_element(By.ID, f"user-{user_id}").text


def press(session, user_id: str, label: str) -> str:
    """Clicks a control of a user's card and confirms; returns the confirmation's question."""
    card = session.find_element(By.ID, f"user-{user_id}")
    card.find_element(By.XPATH, f".//button[text()='{label}']").click()
    return confirm(session)


def test_kill_resume_and_exit_now_from_the_page_steer_the_next_cycles(system, browser):
    scheduler, store, lines = start(system)
    backfill_dip(system, store)
    config = system.config()
    data = StatusData(store=store, config=config, decimals=system.spec.decimals, quote=system.spec.quote.symbol)
    with serving_api(data, "127.0.0.1:0", TOKEN, print) as server:
        origin = f"http://127.0.0.1:{server.server_port}"
        browser.get(f"{origin}/?token={TOKEN}&refresh=3600")  # the page redraws after each action
        wait = WebDriverWait(browser, 20)
        wait.until(lambda page: len(page.find_elements(By.CSS_SELECTOR, "section.user")) == 2)
        browser.find_element(By.ID, "operator").send_keys("jane")

        assert press(browser, "alice", "Kill") == "Engage alice's kill switch: no trade of alice until it is resumed?"
        wait.until(lambda page: "KILL SWITCH" in card_text(page, "alice"))
        assert [r.trades_ok for r in scheduler.run_once()] == [0, 1]  # alice stopped, bob buys WBTC
        assert any("alice" in line and "blocked by kill_switch: engaged from the status page" in line
                   for line in lines), lines

        press(browser, "alice", "Resume")
        wait.until(lambda page: "no locks" in card_text(page, "alice"))
        now = datetime.fromtimestamp(chain.blocks.head.timestamp, UTC)
        assert RiskManager(store, "alice", config.user("alice").risk).can_trade("WETH", opening=True, now=now).allowed

        assert press(browser, "bob", "Exit WBTC now") == 'Sell bob\'s WBTC at the next cycle (reason "operator exit")?'
        wait.until(lambda page: "the next cycle acts on it" in page.find_element(By.ID, "control-result").text)
        assert [r.trades_ok for r in scheduler.run_once()] == [0, 1]  # the same bar: only the exit trades
        assert [r.trades_ok for r in scheduler.run_once()] == [0, 0]  # a request acts once
        browser.refresh()
        wait.until(lambda page: len(page.find_elements(By.CSS_SELECTOR, "#actions tr.action")) == 3)
        assert "SELL trade 0x" in browser.find_elements(By.CSS_SELECTOR, "#actions tr.action")[0].text
        errors, foreign = console_errors(browser), foreign_requests(browser, origin)

    bob_trades = store.trades("bob")
    assert [(t.side, t.status) for t in bob_trades] == [("BUY", MINED), ("SELL", MINED)]
    assert sorted(trade_events(system.record)) == sorted(t.trade_id for t in bob_trades)
    actions = store.control_actions()
    assert [(a.action, a.user_id, a.operator, a.client_address, a.status) for a in actions] == [
        ("exit_now", "bob", "jane", "127.0.0.1", DONE), ("resume", "alice", "jane", "127.0.0.1", DONE),
        ("kill", "alice", "jane", "127.0.0.1", DONE)]
    assert actions[0].trade_id == bob_trades[1].trade_id and "SELL trade" in actions[0].outcome
    assert any("WBTC bollinger SELL" in line and "(operator exit)" in line for line in lines), lines
    assert errors == [] and foreign == []
    store.close()
