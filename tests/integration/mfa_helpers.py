"""Second-factor helpers for the integration tests: codes by time step, enrolment, logins."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pyotp

from tests.integration.admin_helpers import set_role
from tests.integration.conftest import Harness, bearer

PASSWORD = "a long enough passphrase"
STEP = 30


async def steady() -> int:
    """The current time step, once at least 3 s remain of it: a code computed for a step
    near now must not cross a boundary before the server checks it."""
    left = STEP - time.time() % STEP
    if left < 3:
        await asyncio.sleep(left + 0.1)
    return int(time.time()) // STEP


def code(secret: str, counter: int) -> str:
    """The code of time step `counter`, as pyotp computes it."""
    return pyotp.TOTP(secret).generate_otp(counter)


def secret_of(otpauth_uri: str) -> str:
    """The base32 secret an otpauth:// URI carries."""
    return parse_qs(urlsplit(otpauth_uri).query)["secret"][0]


def claims(token: str) -> dict[str, Any]:
    """A token's claims, unverified (the server checked it; the test reads it)."""
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


async def start_enrolment(harness: Harness, access: str) -> dict[str, Any]:
    response = await harness.client.post("/me/mfa/totp", headers=bearer(access))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def enrolled_user(
    harness: Harness, email: str, *, confirm_step: int = -1, role: str | None = None
) -> tuple[str, list[str], dict[str, Any]]:
    """A registered user (of `role`, if given) with a confirmed TOTP factor (confirmed with
    the code of the step `confirm_step` away from now): the secret, the recovery codes, and
    the tokens of the password login made before enrolling."""
    await harness.register(email, PASSWORD)
    if role is not None:
        await set_role(harness, email, role)
    tokens = await harness.login(email, PASSWORD)
    enrolment = await start_enrolment(harness, tokens["access_token"])
    counter = await steady()
    confirmed = await harness.client.post(
        "/me/mfa/totp/confirm",
        json={"code": code(enrolment["secret"], counter + confirm_step)},
        headers=bearer(tokens["access_token"]),
    )
    assert confirmed.status_code == 200, confirmed.text
    return enrolment["secret"], confirmed.json()["recovery_codes"], tokens


async def password_step(harness: Harness, email: str, **extra: Any) -> str:
    """Log in with the password of an enrolled account; the mfa_token it is answered with."""
    response = await harness.client.post(
        "/auth/login", json={"email": email, "password": PASSWORD, **extra}
    )
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["code"] == "mfa_required"
    token: str = body["mfa_token"]
    return token
