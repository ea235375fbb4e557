"""Redis down: authenticated routes fail closed with 503, and recover by themselves."""

from __future__ import annotations

from dataclasses import replace

from api.config.settings import Settings
from tests.integration.conftest import bearer, start_harness, stop_harness
from tests.redis_server import OwnRedis


async def test_authenticated_routes_answer_503_while_redis_is_down_and_recover(
    settings: Settings, own_redis: OwnRedis
) -> None:
    _, harness = await start_harness(replace(settings, redis_url=own_redis.url, redis_timeout=1))
    email = "outage@example.com"
    try:
        async with harness.client:
            await harness.register(email)
            tokens = await harness.login(email)
            auth = bearer(tokens["access_token"])
            assert (await harness.client.get("/auth/verify", headers=auth)).status_code == 204

            own_redis.stop()
            for method, path in (("GET", "/auth/verify"), ("GET", "/me"), ("POST", "/auth/logout")):
                response = await harness.client.request(method, path, headers=auth)
                assert response.status_code == 503, (path, response.text)
                assert response.json()["code"] == "service_unavailable"
            refresh = await harness.client.post(
                "/auth/refresh", headers=bearer(tokens["refresh_token"])
            )
            assert refresh.status_code == 503
            ready = await harness.client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"] == {"postgres": "ok", "redis": "unavailable"}

            own_redis.start()
            assert (await harness.client.get("/auth/verify", headers=auth)).status_code == 204
            assert (await harness.client.get("/readyz")).status_code == 200
    finally:
        await stop_harness(harness, email)
