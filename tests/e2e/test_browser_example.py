"""examples/browser/ in headless Chromium, served from another origin than the real server:
register, log in with cookies, /me, survive an access-token expiry, sessions, logout."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from api.config.settings import Settings
from tests.e2e.browser import StaticSite, headless_chromium
from tests.e2e.conftest import PASSWORD, Users
from tests.e2e.server import ROOT, Server, free_port, settings_env

EXAMPLE = ROOT / "examples" / "browser"
SCREENSHOT = ROOT / ".pytest_cache" / "browser-example-failure.png"
ACCESS_TOKEN_TTL = 3
STEP_TIMEOUT = 15  # seconds one click may take to show its outcome


@pytest.fixture(scope="module")
def site() -> Iterator[StaticSite]:
    site = StaticSite(EXAMPLE)
    yield site
    site.stop()


@pytest.fixture(scope="module")
def cors_server(e2e_settings: Settings, site: StaticSite) -> Iterator[Server]:
    """The real server, letting the example's origin in, with 3-second access tokens."""
    settings = replace(
        e2e_settings, cors_allowed_origins=(site.origin,), access_token_ttl=ACCESS_TOKEN_TTL
    )
    server = Server(settings_env(settings), workers=2)
    yield server
    server.stop()


def click(driver: WebDriver, button: str, expected_status: str) -> str:
    """Click `button` and wait until the page's status starts with `expected_status`."""
    driver.find_element(By.ID, button).click()
    status = driver.find_element(By.ID, "status")
    try:
        WebDriverWait(driver, STEP_TIMEOUT).until(lambda _: status.text.startswith(expected_status))
    except TimeoutException:
        raise AssertionError(f"after {button}: {status.text!r}, not {expected_status!r}") from None
    return str(status.text)


def text(driver: WebDriver, element: str) -> str:
    return str(driver.find_element(By.ID, element).text)


def test_the_browser_example_signs_in_refreshes_and_signs_out(
    cors_server: Server, site: StaticSite, users: Users
) -> None:
    email = users.new_email()
    with headless_chromium() as driver:
        try:
            driver.get(f"{site.origin}/index.html?api={cors_server.url}")
            driver.find_element(By.ID, "email").send_keys(email)
            driver.find_element(By.ID, "password").send_keys(PASSWORD)
            click(driver, "register", "Registered.")
            logged_in = click(driver, "login", "Logged in")
            assert "token_type cookie" in logged_in
            click(driver, "show-me", "Fetched /me.")
            assert text(driver, "me").startswith(email)
            assert text(driver, "refreshes") == "0"

            # Outlive the access token: the page must refresh and retry on its own.
            time.sleep(ACCESS_TOKEN_TTL + 1.5)
            click(driver, "show-me", "Fetched /me.")
            assert text(driver, "me").startswith(email)
            refreshes_after_expiry = text(driver, "refreshes")

            click(driver, "list-sessions", "Listed sessions.")
            sessions = driver.find_elements(By.CSS_SELECTOR, "#sessions li")
            current = driver.find_elements(By.CSS_SELECTOR, "#sessions li.current")
            click(driver, "logout", "Logged out.")
            after_logout = click(driver, "show-me", "Not signed in")
            print(
                f"refreshes after the access token expired: {refreshes_after_expiry}; "
                f"sessions listed: {len(sessions)} ({len(current)} current); "
                f"after logout: {after_logout!r}"
            )
            assert refreshes_after_expiry == "1"
            assert len(sessions) == 1 and len(current) == 1
            assert "401 token_missing" in after_logout
        except BaseException:
            SCREENSHOT.parent.mkdir(exist_ok=True)
            driver.save_screenshot(str(SCREENSHOT))
            print(f"screenshot: {SCREENSHOT}")
            raise


@pytest.mark.parametrize("cause", ["cors", "no-server"])
def test_the_browser_example_names_the_likely_cause_of_a_failed_fetch(
    cause: str, server: Server, site: StaticSite
) -> None:
    # `server` does not let the site's origin in; nothing listens on a free port.
    api = server.url if cause == "cors" else f"http://127.0.0.1:{free_port()}"
    expected = "The API at" if cause == "cors" else "Nothing answers at"
    with headless_chromium() as driver:
        driver.get(f"{site.origin}/index.html?api={api}")
        status = click(driver, "show-me", expected)
    print(f"browser example, {cause}: {status!r}")
    hint = f"add {site.origin} to its CORS_ALLOWED_ORIGINS" if cause == "cors" else "scripts/run"
    assert hint in status
    assert api in status
