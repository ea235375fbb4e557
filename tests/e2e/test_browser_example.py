"""examples/browser/ in headless Chromium, served from another origin than the real server:
register, log in with cookies, /me, survive an access-token expiry, sessions, logout;
enrol a second factor (the QR code drawn by the page) and log in with a code; and reset a
forgotten password through the link of a message delivered by a real SMTP server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
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
from tests.e2e.smtp_process import SmtpProcess
from tests.integration.mfa_helpers import code, secret_of
from tests.smtp_sink import text_body

EXAMPLE = ROOT / "examples" / "browser"
SCREENSHOT = ROOT / ".pytest_cache" / "browser-example-failure.png"
ACCESS_TOKEN_TTL = 3
STEP_TIMEOUT = 15  # seconds one click may take to show its outcome
NEW_PASSWORD = "a brand new long passphrase"


@pytest.fixture(scope="module")
def site() -> Iterator[StaticSite]:
    site = StaticSite(EXAMPLE)
    yield site
    site.stop()


@pytest.fixture(scope="module")
def cors_server(e2e_settings: Settings, site: StaticSite, smtp: SmtpProcess) -> Iterator[Server]:
    """The real server, letting the example's origin in, with 3-second access tokens; its
    messages go to `smtp`, their links open the example page pointed at this server."""
    port = free_port()
    settings = replace(
        e2e_settings,
        cors_allowed_origins=(site.origin,),
        access_token_ttl=ACCESS_TOKEN_TTL,
        smtp_url=smtp.url,
        mail_send_in_workers=True,
        public_link_base=_page(site, f"http://127.0.0.1:{port}"),
    )
    server = Server(settings_env(settings), workers=2, port=port)
    yield server
    server.stop()


def _page(site: StaticSite, api: str) -> str:
    return f"{site.origin}/index.html?api={api}"


def click(driver: WebDriver, button: str, expected_status: str) -> str:
    """Click `button` and wait until the page's status starts with `expected_status`."""
    driver.find_element(By.ID, button).click()
    return shows(driver, expected_status, after=button)


def shows(driver: WebDriver, expected_status: str, after: str) -> str:
    """The page's status once it starts with `expected_status`.

    Raises:
        AssertionError: it did not within STEP_TIMEOUT.
    """
    status = driver.find_element(By.ID, "status")
    try:
        WebDriverWait(driver, STEP_TIMEOUT).until(lambda _: status.text.startswith(expected_status))
    except TimeoutException:
        raise AssertionError(f"after {after}: {status.text!r}, not {expected_status!r}") from None
    return str(status.text)


def text(driver: WebDriver, element: str) -> str:
    return str(driver.find_element(By.ID, element).text)


@contextmanager
def _screenshot_on_failure(driver: WebDriver) -> Iterator[None]:
    try:
        yield
    except BaseException:
        SCREENSHOT.parent.mkdir(exist_ok=True)
        driver.save_screenshot(str(SCREENSHOT))
        print(f"screenshot: {SCREENSHOT}")
        raise


def test_the_browser_example_signs_in_refreshes_and_signs_out(
    cors_server: Server, site: StaticSite, users: Users
) -> None:
    email = users.new_email()
    with headless_chromium() as driver, _screenshot_on_failure(driver):
        driver.get(_page(site, cors_server.url))
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


@pytest.mark.parametrize("opened_in", ["a new tab", "the page's tab"])
def test_the_browser_example_resets_a_forgotten_password_through_the_mailed_link(
    opened_in: str, cors_server: Server, site: StaticSite, smtp: SmtpProcess, users: Users
) -> None:
    email = users.new_email()
    page = _page(site, cors_server.url)
    with headless_chromium() as driver, _screenshot_on_failure(driver):
        driver.get(page)
        driver.find_element(By.ID, "email").send_keys(email)
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        click(driver, "register", "Registered.")
        click(driver, "forgot", "If an account has this address, a reset link is on its way.")
        body = text_body(smtp.wait_for(email, "Reset your password"))
        link = next((word for word in body.split() if word.startswith(page + "#")), None)
        assert link is not None, body

        # From a mail client the link opens the page afresh; pasted into the tab that shows
        # the page it only changes the fragment, and the page must notice.
        if opened_in == "a new tab":
            driver.switch_to.new_window("tab")
        driver.get(link)
        opened = shows(driver, "Choose a new password.", after="opening the link")
        address = driver.current_url
        filled = driver.find_element(By.ID, "reset-token").get_attribute("value")
        driver.find_element(By.ID, "new-password").send_keys(NEW_PASSWORD)
        changed = click(driver, "reset", "Password changed")

        for field, value in (("email", email), ("password", NEW_PASSWORD)):
            driver.find_element(By.ID, field).clear()
            driver.find_element(By.ID, field).send_keys(value)
        logged_in = click(driver, "login", "Logged in")
        click(driver, "show-me", "Fetched /me.")
        me = text(driver, "me")
        password = driver.find_element(By.ID, "password")
        password.clear()
        password.send_keys(PASSWORD)
        refused = click(driver, "login", "Not logged in")
        print(
            f"reset link opened in {opened_in}: {link.replace(str(filled), '<token>')}; "
            f"on opening: {opened!r}; "
            f"reset: {changed!r}; new password: {logged_in!r}; old password: {refused!r}"
        )
        assert link.startswith(f"{page}#action=reset-password&token=")
        assert filled and link.endswith(f"token={filled}")
        assert address == page  # the token left the address bar once read
        assert me.startswith(email)
        assert "401 invalid_credentials" in refused


@pytest.fixture(scope="module")
def mfa_server(e2e_settings: Settings, site: StaticSite) -> Iterator[Server]:
    """The real server letting the example's origin in, with the default token lifetimes
    (enrolment needs a fresh token: no refresh may come between login and enrolment)."""
    server = Server(settings_env(replace(e2e_settings, cors_allowed_origins=(site.origin,))))
    yield server
    server.stop()


def _steady_step() -> int:
    # A code typed for a step near now must not cross a boundary before the server checks it.
    left = 30 - time.time() % 30
    if left < 5:
        time.sleep(left + 0.1)
    return int(time.time()) // 30


def test_the_browser_example_enrols_a_second_factor_and_logs_in_with_a_code(
    mfa_server: Server, site: StaticSite, users: Users
) -> None:
    email = users.new_email()
    with headless_chromium() as driver, _screenshot_on_failure(driver):
        driver.get(_page(site, mfa_server.url))
        driver.find_element(By.ID, "email").send_keys(email)
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        click(driver, "register", "Registered.")
        click(driver, "login", "Logged in")
        click(driver, "enrol", "Scan the QR code")
        # The QR code is drawn by the page itself, from the otpauth:// URI.
        assert driver.find_elements(By.CSS_SELECTOR, "#qr svg")
        uri = driver.find_element(By.ID, "mfa-secret").get_attribute("data-otpauth-uri")
        secret = secret_of(str(uri))
        assert text(driver, "mfa-secret") == secret
        counter = _steady_step()
        driver.find_element(By.ID, "enrol-code").send_keys(code(secret, counter - 1))
        click(driver, "confirm-enrolment", "Two-factor login is on")
        recovery = driver.find_elements(By.CSS_SELECTOR, "#recovery-codes li")
        click(driver, "logout", "Logged out.")

        asked = click(driver, "login", "Code needed")
        driver.find_element(By.ID, "login-code").send_keys(code(secret, counter))
        finished = click(driver, "verify-code", "Logged in with two factors")
        click(driver, "show-me", "Fetched /me.")
        print(
            f"recovery codes shown: {len(recovery)}; password step: {asked!r}; "
            f"code step: {finished!r}"
        )
        assert len(recovery) == 10
        assert text(driver, "me").startswith(email) and "two-factor on" in text(driver, "me")


@pytest.mark.parametrize("cause", ["cors", "no-server"])
def test_the_browser_example_names_the_likely_cause_of_a_failed_fetch(
    cause: str, server: Server, site: StaticSite
) -> None:
    # `server` does not let the site's origin in; nothing listens on a free port.
    api = server.url if cause == "cors" else f"http://127.0.0.1:{free_port()}"
    expected = "The API at" if cause == "cors" else "Nothing answers at"
    with headless_chromium() as driver:
        driver.get(_page(site, api))
        status = click(driver, "show-me", expected)
    print(f"browser example, {cause}: {status!r}")
    hint = f"add {site.origin} to its CORS_ALLOWED_ORIGINS" if cause == "cors" else "scripts/run"
    assert hint in status
    assert api in status
