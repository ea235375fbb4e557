"""The Redis layout of revocation: one hash tag per user, and TTLs equal to what each key covers."""

from __future__ import annotations

import time
from dataclasses import replace

import jwt

from api.config.settings import Settings
from tests.integration.conftest import Harness, bearer, start_harness, stop_harness

EMAIL = "keys@example.com"


async def _keys(harness: Harness, user_id: str) -> dict[str, int]:
    """The user's revocation keys, without the run's prefix, and their TTLs."""
    redis, prefix = harness.resources.redis, harness.resources.settings.redis_key_prefix
    keys = [key async for key in redis.scan_iter(match=f"{prefix}rv:{{{user_id}}}:*")]
    return {key.removeprefix(prefix): await redis.ttl(key) for key in keys}


async def test_logout_writes_jti_and_session_keys_with_their_remaining_lifetimes(
    harness: Harness, settings: Settings
) -> None:
    user = await harness.register(EMAIL)
    tokens = await harness.login(EMAIL)
    claims = jwt.decode(tokens["access_token"], settings.jwt_secret_key, algorithms=["HS256"])
    await harness.client.post("/auth/logout", headers=bearer(tokens["access_token"]))

    ttls = await _keys(harness, user["id"])
    jti_key = f"rv:{{{user['id']}}}:jti:{claims['jti']}"
    sid_key = f"rv:{{{user['id']}}}:sid:{tokens['session_id']}"
    assert set(ttls) == {jti_key, sid_key}
    remaining_access = claims["exp"] - time.time()
    # The TTL is rounded up when written, a moment before `remaining_access` was read.
    assert remaining_access - 2 <= ttls[jti_key] <= remaining_access + 2
    assert settings.refresh_token_ttl - 5 <= ttls[sid_key] <= settings.refresh_token_ttl


async def test_logout_all_writes_a_before_mark_and_a_mark_per_session_lasting_a_refresh_lifetime(
    harness: Harness, settings: Settings
) -> None:
    user = await harness.register(EMAIL)
    tokens = await harness.login(EMAIL)
    await harness.client.post("/auth/logout-all", headers=bearer(tokens["access_token"]))
    ttls = await _keys(harness, user["id"])
    before_key = f"rv:{{{user['id']}}}:before"
    sid_key = f"rv:{{{user['id']}}}:sid:{tokens['session_id']}"
    assert set(ttls) == {before_key, sid_key}
    for key in (before_key, sid_key):
        assert settings.refresh_token_ttl - 5 <= ttls[key] <= settings.refresh_token_ttl
    prefix = harness.resources.settings.redis_key_prefix
    mark = float(await harness.resources.redis.get(prefix + before_key))
    assert abs(mark - time.time()) < 5


async def test_revoking_a_refreshed_session_keeps_its_mark_as_long_as_its_newest_refresh_token(
    settings: Settings,
) -> None:
    short = replace(settings, refresh_token_ttl=3600, access_token_ttl=60)
    _, harness = await start_harness(short)
    try:
        async with harness.client:
            user = await harness.register("ttl@example.com")
            tokens = await harness.login("ttl@example.com")
            response = await harness.client.post(
                "/auth/logout", headers=bearer(tokens["access_token"])
            )
            assert response.status_code == 204
            ttls = await _keys(harness, user["id"])
            sid_key = f"rv:{{{user['id']}}}:sid:{tokens['session_id']}"
            assert 3590 <= ttls[sid_key] <= 3600
            assert all(ttl > 0 for ttl in ttls.values()), "every key must expire"
    finally:
        await stop_harness(harness, "ttl@example.com")
