"""The real browser of the status page tests: Debian's headless Chromium through its
chromedriver, driven by Selenium, with no name resolving but 127.0.0.1's (the page must
work offline), and what the tests read from it."""

from __future__ import annotations

import shutil

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait


@pytest.fixture
def browser():
    """Headless Chromium through chromedriver (both Debian's); quit stops both."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, "chromium and chromedriver not found: run `make setup`"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1", "--window-size=1400,1000"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    session = webdriver.Chrome(options=options, service=Service(driver))
    yield session
    session.quit()


def console_errors(session: webdriver.Chrome) -> list[dict]:
    """The page's console errors (a CSP violation and a failed load among them)."""
    return [entry for entry in session.get_log("browser") if entry["level"] == "SEVERE"]


def foreign_requests(session: webdriver.Chrome, origin: str) -> list[str]:
    """Every resource the page loaded from anywhere but ``origin`` (the API)."""
    loaded = session.execute_script("return performance.getEntriesByType('resource').map((entry) => entry.name)")
    return [url for url in loaded if not url.startswith(origin + "/")]


def confirm(session: webdriver.Chrome) -> str:
    """Accepts the page's confirmation dialog; returns its question."""
    WebDriverWait(session, 10).until(expected_conditions.alert_is_present())
    alert = session.switch_to.alert
    question = alert.text
    alert.accept()
    return question
