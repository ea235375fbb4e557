"""Interoperability: codes from Debian's oathtool (an independent RFC 6238 implementation,
as authenticator apps are) computed from the otpauth:// URI the server returned."""

from __future__ import annotations

import subprocess

import pytest

from tests.debian_packages import debian_binary
from tests.integration.conftest import Harness, bearer
from tests.integration.mfa_helpers import (
    PASSWORD,
    STEP,
    code,
    password_step,
    secret_of,
    start_enrolment,
    steady,
)

USERS = 3


@pytest.fixture(scope="module")
def oathtool() -> str:
    return debian_binary("oathtool", "oathtool")


def oath_code(oathtool: str, secret: str, counter: int) -> str:
    """The code oathtool computes for time step `counter` of a base32 secret."""
    answer = subprocess.run(
        [
            oathtool,
            "--totp",
            "--base32",
            "--digits=6",
            f"--time-step-size={STEP}s",
            f"--now=@{counter * STEP}",
            secret,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    return answer.stdout.strip()


async def test_codes_from_oathtool_confirm_enrolment_and_finish_logins(
    harness: Harness, oathtool: str
) -> None:
    accepted = tried = 0
    for n in range(USERS):
        email = f"interop-{n}@example.com"
        await harness.register(email, PASSWORD)
        access = (await harness.login(email, PASSWORD))["access_token"]
        secret = secret_of((await start_enrolment(harness, access))["otpauth_uri"])
        counter = await steady()
        confirmed = await harness.client.post(
            "/me/mfa/totp/confirm",
            json={"code": oath_code(oathtool, secret, counter - 1)},
            headers=bearer(access),
        )
        tried += 1
        accepted += confirmed.status_code == 200
        for step in (counter, counter + 1):
            response = await harness.client.post(
                "/auth/mfa/verify",
                json={
                    "mfa_token": await password_step(harness, email),
                    "code": oath_code(oathtool, secret, step),
                },
            )
            tried += 1
            accepted += response.status_code == 200
    print(f"interop codes from oathtool accepted: {accepted} of {tried}")
    assert accepted == tried == USERS * 3


async def test_oathtool_and_pyotp_agree_on_every_step(harness: Harness, oathtool: str) -> None:
    await harness.register("agree@example.com", PASSWORD)
    access = (await harness.login("agree@example.com", PASSWORD))["access_token"]
    secret = secret_of((await start_enrolment(harness, access))["otpauth_uri"])
    steps = [0, 1, 59_999_999, *range(56_000_000, 56_000_020)]
    assert [oath_code(oathtool, secret, s) for s in steps] == [code(secret, s) for s in steps]
