"""GET /metrics: Prometheus text with requests, latency, logins, revocations and limit hits."""

from __future__ import annotations

import re
import uuid
from dataclasses import replace

from api.config.settings import Settings
from api.edge.metrics import METHODS
from tests.conftest import forget_redis_keys
from tests.integration.conftest import Harness, bearer, start_harness


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the exposition (0 when absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and ",".join(sorted(match.group(1).split(","))) == wanted:
            return float(match.group(2))
    return 0.0


async def _metrics(harness: Harness) -> str:
    response = await harness.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return response.text


async def test_metrics_count_requests_by_route_and_status_with_latency(harness: Harness) -> None:
    before = await _metrics(harness)
    for _ in range(3):
        await harness.client.get("/healthz")
    await harness.client.get("/no/such/route")
    after = await _metrics(harness)
    labels = {"route": "/healthz", "method": "GET", "status": "200"}
    assert (
        sample(after, "auth_api_requests_total", **labels)
        - sample(before, "auth_api_requests_total", **labels)
        == 3
    )
    unmatched = {"route": "unmatched", "method": "GET", "status": "404"}
    assert sample(after, "auth_api_requests_total", **unmatched) > sample(
        before, "auth_api_requests_total", **unmatched
    )
    assert (
        sample(after, "auth_api_request_duration_seconds_count", route="/healthz", method="GET")
        >= 3
    )


async def test_metrics_count_logins_by_outcome_and_revocations(harness: Harness) -> None:
    before = await _metrics(harness)
    await harness.register("metrics@example.com")
    tokens = await harness.login("metrics@example.com")
    await harness.client.post(
        "/auth/login", json={"email": "metrics@example.com", "password": "wrong password here"}
    )
    await harness.client.post("/auth/logout", headers=bearer(tokens["access_token"]))
    after = await _metrics(harness)
    for name, labels in (
        ("auth_api_logins_total", {"outcome": "success"}),
        ("auth_api_logins_total", {"outcome": "invalid_credentials"}),
        ("auth_api_revocations_total", {"kind": "logout"}),
    ):
        assert sample(after, name, **labels) - sample(before, name, **labels) == 1, labels


async def test_metrics_count_rate_limit_hits(settings: Settings) -> None:
    limited = replace(settings, rate_limits_enabled=True, login_rate_limit="1/minute")
    _, harness = await start_harness(limited)
    try:
        async with harness.client:
            before = await _metrics(harness)
            for _ in range(3):
                await harness.client.post("/auth/login", json={})
            after = await _metrics(harness)
    finally:
        await forget_redis_keys(harness.resources.redis, settings.redis_key_prefix)
        await harness.runtime.stop()
    hits = sample(after, "auth_api_rate_limit_hits_total", limit="login_ip") - sample(
        before, "auth_api_rate_limit_hits_total", limit="login_ip"
    )
    assert hits == 2
    assert sample(after, "auth_api_logins_total", outcome="rate_limited") >= 2


def series(text: str) -> list[str]:
    """The samples of the service's own metrics, one line each."""
    return [line for line in text.splitlines() if line.startswith("auth_api_")]


def label_values(text: str, label: str) -> set[str]:
    return set(re.findall(rf'{label}="([^"]*)"', "\n".join(series(text))))


async def test_made_up_methods_do_not_grow_the_series(harness: Harness) -> None:
    await harness.client.request("BREW", "/healthz")
    await _metrics(harness)  # /metrics counts itself once it has answered
    before = series(await _metrics(harness))
    for _ in range(300):
        await harness.client.request(f"X-{uuid.uuid4().hex[:12]}", "/healthz")
    after = await _metrics(harness)
    print(f"series: {len(before)} before 300 made-up methods, {len(series(after))} after")
    assert len(series(after)) == len(before)
    assert label_values(after, "method") <= {*METHODS, "other"}
    assert (
        sample(after, "auth_api_requests_total", route="unmatched", method="other", status="405")
        >= 301
    )
