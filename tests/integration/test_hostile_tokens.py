"""Hostile tokens (RFC 8725) against both verifiers: the Flask guard (GET /me) and the
event-loop lane of GET /auth/verify. Never a 500; always the documented token code."""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import replace
from typing import Any

import jwt
import pytest

from api.config.settings import Settings
from tests.integration.conftest import Harness, start_harness, stop_harness
from tests.integration.problems import INVALID_TOKEN_CHALLENGE, assert_problem

ROUTES = ("/me", "/auth/verify")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(token: str, settings: Settings) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, settings.jwt_secret_key, algorithms=["HS256"])
    return claims


async def _refused(harness: Harness, token: str, code: str) -> None:
    for route in ROUTES:
        response = await harness.client.get(route, headers={"Authorization": f"Bearer {token}"})
        assert_problem(response, 401, code)
        assert response.headers["WWW-Authenticate"] == INVALID_TOKEN_CHALLENGE, route


async def _access(harness: Harness) -> str:
    _, token = await harness.user_with_token("hostile@example.com")
    return token


async def test_tampered_payload_with_the_original_signature_is_invalid(
    harness: Harness, settings: Settings
) -> None:
    token = await _access(harness)
    header, _, signature = token.split(".")
    claims = {**_claims(token, settings), "role": "admin"}
    tampered = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"
    await _refused(harness, tampered, "token_invalid")


@pytest.mark.parametrize(
    "strip", [lambda t: t.rsplit(".", 1)[0] + ".", lambda t: t.rsplit(".", 1)[0]]
)
async def test_stripped_signature_is_invalid(harness: Harness, strip: Any) -> None:
    await _refused(harness, strip(await _access(harness)), "token_invalid")


async def test_alg_none_is_invalid(harness: Harness, settings: Settings) -> None:
    claims = _claims(await _access(harness), settings)
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    await _refused(harness, f"{header}.{_b64(json.dumps(claims).encode())}.", "token_invalid")


@pytest.mark.parametrize("kid", ["../../../../dev/null", "' OR 1=1 --", "\x00" * 8])
async def test_hostile_kid_is_ignored_by_the_pinned_hs256_key(
    harness: Harness, settings: Settings, kid: str
) -> None:
    """HS256 takes no key from the header: a kid changes nothing and is never looked up."""
    claims = _claims(await _access(harness), settings)
    signed = jwt.encode(claims, settings.jwt_secret_key, algorithm="HS256", headers={"kid": kid})
    for route in ROUTES:
        response = await harness.client.get(route, headers={"Authorization": f"Bearer {signed}"})
        assert response.status_code in (200, 204), response.text
    forged = jwt.encode(claims, "wrong key " * 5, algorithm="HS256", headers={"kid": kid})
    await _refused(harness, forged, "token_invalid")


async def test_expired_token_is_token_expired(harness: Harness, settings: Settings) -> None:
    claims = _claims(await _access(harness), settings)
    now = int(time.time())
    claims.update(iat=now - 100, nbf=now - 100, exp=now - 1)
    await _refused(harness, jwt.encode(claims, settings.jwt_secret_key, "HS256"), "token_expired")


async def test_token_not_yet_valid_is_invalid(harness: Harness, settings: Settings) -> None:
    claims = _claims(await _access(harness), settings)
    claims["nbf"] = int(time.time()) + 600
    await _refused(harness, jwt.encode(claims, settings.jwt_secret_key, "HS256"), "token_invalid")


async def test_refresh_token_where_an_access_token_is_expected_is_invalid(
    harness: Harness,
) -> None:
    await harness.register("hostile@example.com")
    tokens = await harness.login("hostile@example.com")
    await _refused(harness, tokens["refresh_token"], "token_invalid")


async def test_claims_of_the_wrong_shape_are_invalid(harness: Harness, settings: Settings) -> None:
    claims = _claims(await _access(harness), settings)
    for broken in ({"sid": "not-a-uuid"}, {"sub": 12345}, {"jti": None}, {"type": "refresh"}):
        token = jwt.encode({**claims, **broken}, settings.jwt_secret_key, "HS256")
        await _refused(harness, token, "token_invalid")


async def test_100_kb_token_is_a_clean_token_invalid(harness: Harness) -> None:
    await _refused(harness, "a" * 100_000, "token_invalid")


@pytest.mark.parametrize(
    ("header", "code"),
    [("Bearer", "token_missing"), ("Bearer    ", "token_missing"), ("Basic abc", "token_missing")],
)
async def test_authorization_without_a_bearer_token_is_token_missing(
    harness: Harness, header: str, code: str
) -> None:
    for route in ROUTES:
        response = await harness.client.get(route, headers={"Authorization": header})
        assert_problem(response, 401, code)
        assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_bearer_scheme_is_case_insensitive(harness: Harness) -> None:
    token = await _access(harness)
    for scheme in ("bearer", "BEARER", "BeArEr"):
        me = await harness.client.get("/me", headers={"Authorization": f"{scheme} {token}"})
        verify = await harness.client.get(
            "/auth/verify", headers={"Authorization": f"{scheme}  {token}"}
        )
        assert (me.status_code, verify.status_code) == (200, 204)


async def test_garbage_authorization_values_never_give_a_500(harness: Harness) -> None:
    token = await _access(harness)
    values = (
        f"Bearer {token}, Bearer {token}".encode(),
        "Bearer \u00e9\u00e8\U0001f600".encode(),
        b"Bearer a b c",
        b"Bearer ....",
        b"Bearer \xff\xfe",
    )
    for value in values:
        for route in ROUTES:
            response = await harness.client.get(route, headers={"Authorization": value})
            assert 400 <= response.status_code < 500, (route, value, response.text)
            assert response.headers["Content-Type"] == "application/problem+json"


async def test_wrong_issuer_or_audience_is_invalid_when_configured(settings: Settings) -> None:
    strict = replace(settings, jwt_issuer="https://issuer.test", jwt_audience="auth-api")
    _, harness = await start_harness(strict)
    email = f"iss-{uuid.uuid4().hex}@example.com"
    try:
        async with harness.client:
            await harness.register(email)
            tokens = await harness.login(email)
            good = tokens["access_token"]
            claims = jwt.decode(
                good, strict.jwt_secret_key, algorithms=["HS256"], audience="auth-api"
            )
            assert claims["iss"] == "https://issuer.test" and claims["aud"] == "auth-api"
            for route in ROUTES:
                ok = await harness.client.get(route, headers={"Authorization": f"Bearer {good}"})
                assert ok.status_code in (200, 204)
            for changed in ({"iss": "https://evil.test"}, {"aud": "another-api"}):
                forged = jwt.encode({**claims, **changed}, strict.jwt_secret_key, "HS256")
                await _refused(harness, forged, "token_invalid")
            bare = {k: v for k, v in claims.items() if k not in ("iss", "aud")}
            await _refused(
                harness, jwt.encode(bare, strict.jwt_secret_key, "HS256"), "token_invalid"
            )
    finally:
        await stop_harness(harness, email)
