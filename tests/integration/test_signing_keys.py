"""RS256, ES256 and EdDSA: every token names its key by kid, every route picks the key by
kid and verifies with that key's algorithm only, and the public keys are published."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import jwt
import pytest

from api.ops.jwks import CACHE_CONTROL
from api.security.keys import load_key_set, public_pem
from tests.integration.conftest import Harness, HarnessFactory, bearer
from tests.integration.problems import assert_problem
from tests.signing_keys import (
    ALGORITHMS,
    claims_of,
    header_of,
    hmac_signed,
    new_key,
    signed_by_hand,
    write_private,
    write_public,
)

ACCESS_ROUTES = ("/auth/verify", "/me")


async def _signed_in(harness: Harness, email: str) -> dict[str, Any]:
    await harness.register(email)
    tokens: dict[str, Any] = await harness.login(email)
    return tokens


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_tokens_name_the_signing_key_and_every_route_takes_them(
    make_harness: HarnessFactory, tmp_path: Path, algorithm: str
) -> None:
    signing = write_private(tmp_path, "signing.pem", new_key(algorithm))
    harness = await make_harness(jwt_algorithm=algorithm, jwt_private_key_file=signing)
    kid = load_key_set(algorithm, None, signing, ()).signing.kid
    tokens = await _signed_in(harness, "keys@example.com")

    for token in (tokens["access_token"], tokens["refresh_token"]):
        assert header_of(token) == {"alg": algorithm, "kid": kid, "typ": "JWT"}
    answers = [
        (await harness.client.get(route, headers=bearer(tokens["access_token"]))).status_code
        for route in ACCESS_ROUTES
    ]
    refreshed = await harness.client.post("/auth/refresh", headers=bearer(tokens["refresh_token"]))
    assert (answers, refreshed.status_code) == ([204, 200], 200), refreshed.text
    assert header_of(refreshed.json()["access_token"])["kid"] == kid

    # Cookie transport: Flask-JWT-Extended reads the CSRF value back out of its own token.
    cookie = await harness.client.post(
        "/auth/login",
        json={
            "email": "keys@example.com",
            "password": "a long enough passphrase",
            "transport": "cookie",
        },
    )
    assert cookie.status_code == 200, cookie.text

    published = await harness.client.get("/.well-known/jwks.json")
    assert published.headers["Cache-Control"] == CACHE_CONTROL == "public, max-age=300"
    assert published.headers["Content-Type"] == "application/json"
    (key,) = published.json()["keys"]
    assert (key["kid"], key["alg"], key["use"]) == (kid, algorithm, "sig")
    head = await harness.client.head("/.well-known/jwks.json")
    assert (head.status_code, head.headers["Cache-Control"]) == (200, CACHE_CONTROL)
    # The published key verifies the token (PyJWT here; independent libraries in e2e).
    verifier = jwt.PyJWK(key)
    assert jwt.decode(tokens["access_token"], verifier, algorithms=[algorithm])["sub"]


async def test_hs256_tokens_carry_a_kid_and_nothing_is_published(harness: Harness) -> None:
    tokens = await _signed_in(harness, "hs256@example.com")
    kid = harness.resources.keys.signing.kid
    assert header_of(tokens["access_token"]) == {"alg": "HS256", "kid": kid, "typ": "JWT"}
    assert header_of(tokens["refresh_token"])["kid"] == kid
    published = await harness.client.get("/.well-known/jwks.json")
    assert published.json() == {"keys": []}
    assert published.headers["Cache-Control"] == CACHE_CONTROL


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_a_token_must_name_a_configured_key_and_use_its_algorithm(
    make_harness: HarnessFactory, tmp_path: Path, algorithm: str
) -> None:
    private = new_key(algorithm)
    signing = write_private(tmp_path, "signing.pem", private)
    harness = await make_harness(jwt_algorithm=algorithm, jwt_private_key_file=signing)
    kid = harness.resources.keys.signing.kid
    tokens = await _signed_in(harness, "forger@example.com")
    access, refresh = claims_of(tokens["access_token"]), claims_of(tokens["refresh_token"])
    public_pem_bytes = public_pem(private.public_key())  # what write_public puts in the file
    stranger = new_key(algorithm)

    def forgeries(claims: dict[str, Any]) -> dict[str, str]:
        return {
            # The classic confusion: HS256 with the public key's PEM bytes as the secret.
            "hs256-public-pem": hmac_signed(claims, public_pem_bytes, {"kid": kid}),
            "hs256-public-pem-no-kid": hmac_signed(claims, public_pem_bytes, {}),
            "no-kid": jwt.encode(claims, private, algorithm=algorithm),
            "unknown-kid": jwt.encode(claims, private, algorithm, headers={"kid": "x" * 43}),
            "kid-not-a-string": signed_by_hand(claims, private, algorithm, {"kid": [kid]}),
            "stranger-key-our-kid": jwt.encode(claims, stranger, algorithm, headers={"kid": kid}),
        }

    access_forged, refresh_forged = forgeries(access), forgeries(refresh)
    rounds = 5
    calls = []
    for _ in range(rounds):
        for name, token in access_forged.items():
            calls += [(name, route, "get", token) for route in ACCESS_ROUTES]
        for name, token in refresh_forged.items():
            calls.append((name, "/auth/refresh", "post", token))
        # Good tokens interleaved: the same routes keep taking them meanwhile.
        calls += [("good", route, "get", tokens["access_token"]) for route in ACCESS_ROUTES]

    async def call(route: str, method: str, token: str) -> Any:
        return await harness.client.request(method, route, headers=bearer(token))

    answers = await asyncio.gather(*(call(r, m, t) for _, r, m, t in calls))
    refused: Counter[str] = Counter()
    for (name, route, _, _), answer in zip(calls, answers, strict=True):
        if name == "good":
            assert answer.status_code in (200, 204), (route, answer.text)
        else:
            assert_problem(answer, 401, "token_invalid")
            refused[name] += 1
    total = sum(1 for name, *_ in calls if name != "good")
    print(
        f"{algorithm}: forged refused {sum(refused.values())} of {total}: {dict(refused)}; "
        f"good accepted {len(calls) - total} of {len(calls) - total}"
    )


async def test_older_keys_verify_their_own_tokens_with_their_own_algorithm_only(
    make_harness: HarnessFactory, tmp_path: Path
) -> None:
    old = new_key("RS256")
    signing_key = new_key("ES256")
    signing = write_private(tmp_path, "signing.pem", signing_key)
    older = write_public(tmp_path, "older.pub", old)
    harness = await make_harness(
        jwt_algorithm="ES256", jwt_private_key_file=signing, jwt_public_key_files=(older,)
    )
    new_kid, old_kid = (key.kid for key in harness.resources.keys.keys)
    claims = claims_of((await _signed_in(harness, "older@example.com"))["access_token"])

    by_old_key = jwt.encode(claims, old, "RS256", headers={"kid": old_kid})
    other_alg = jwt.encode(claims, old, "PS256", headers={"kid": old_kid})
    old_kid_new_key = jwt.encode(claims, signing_key, "ES256", headers={"kid": old_kid})
    for route in ACCESS_ROUTES:
        assert (await harness.client.get(route, headers=bearer(by_old_key))).status_code in (
            200,
            204,
        )
        for forged in (other_alg, old_kid_new_key):
            assert_problem(
                await harness.client.get(route, headers=bearer(forged)), 401, "token_invalid"
            )
    published = (await harness.client.get("/.well-known/jwks.json")).json()["keys"]
    assert [(k["kid"], k["alg"]) for k in published] == [(new_kid, "ES256"), (old_kid, "RS256")]
