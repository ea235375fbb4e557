"""The opt-in periodic purge, in the real server: old ended sessions go, tokens stay refused."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from dataclasses import replace

import asyncpg
import httpx
from redis.asyncio import Redis

from api.config.settings import Settings
from tests.e2e.conftest import Users
from tests.e2e.server import SHUTDOWN_PROBLEMS, Server, settings_env

RETENTION = 3600
# How long the test waits for a purge that runs every second; a bound, not a measurement.
PATIENCE = 30.0


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _exists(pg: asyncpg.Connection, session_id: str) -> bool:
    found = await pg.fetchval("SELECT 1 FROM sessions WHERE id = $1", uuid.UUID(session_id))
    return found is not None


async def test_periodic_purge_deletes_an_old_revoked_session_and_its_refresh_stays_refused(
    e2e_settings: Settings, users: Users, pg: asyncpg.Connection, redis_url: str
) -> None:
    purging = replace(e2e_settings, session_purge_interval=1, session_retention=RETENTION)
    server = Server(settings_env(purging), workers=2)
    output = ""
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            email = await users.register(http)
            old = await users.login(http, email)
            recent = await users.login(http, email)
            active = await users.login(http, email)
            for tokens in (old, recent):
                response = await http.post("/auth/logout", headers=_bearer(tokens["access_token"]))
                assert response.status_code == 204
            await pg.execute(
                "UPDATE sessions SET revoked_at = now() - make_interval(secs => $2) WHERE id = $1",
                uuid.UUID(old["session_id"]),
                float(2 * RETENTION),
            )

            waited_from = time.monotonic()
            while await _exists(pg, old["session_id"]):
                assert time.monotonic() - waited_from < PATIENCE, "the purge never ran"
                await asyncio.sleep(0.2)
            print(f"old revoked session purged after about {time.monotonic() - waited_from:.1f} s")
            assert await _exists(pg, recent["session_id"])
            assert await _exists(pg, active["session_id"])

            # As if the revocation marks had expired from Redis: the missing row must refuse.
            user_id = await pg.fetchval(
                "SELECT user_id::text FROM sessions WHERE id = $1", uuid.UUID(active["session_id"])
            )
            redis = Redis.from_url(redis_url)
            try:
                marks = [
                    k
                    async for k in redis.scan_iter(
                        match=f"{e2e_settings.redis_key_prefix}rv:{{{user_id}}}:*"
                    )
                ]
                assert marks
                await redis.delete(*marks)
            finally:
                await redis.aclose()
            refused = await http.post("/auth/refresh", headers=_bearer(old["refresh_token"]))
            assert refused.status_code == 401
            assert refused.json()["code"] == "token_revoked"
            still = await http.post("/auth/refresh", headers=_bearer(active["refresh_token"]))
            assert still.status_code == 200
    finally:
        output = server.stop()
    problems = [line for line in output.splitlines() if any(p in line for p in SHUTDOWN_PROBLEMS)]
    assert not problems, output
    assert re.search(r"purged sessions: \d+", output), output
