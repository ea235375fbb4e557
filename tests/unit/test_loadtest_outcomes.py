"""scripts/loadtest's account of what happened: goodput, shed and limited apart, and
whether the server was at the host's hashing limit."""

from __future__ import annotations

from scripts.loadtest import ErrorCount, RouteStats, Summary, render, with_outcomes


def _summary(requests: int, errors: list[ErrorCount]) -> Summary:
    failures = sum(e.count for e in errors)
    login = RouteStats(
        "POST /auth/login", requests, failures, requests / 10, 1200, 1500, 1900, 2500, 1200
    )
    return Summary(
        url="http://127.0.0.1:8000",
        scenario="login",
        concurrency=64,
        duration="10s",
        seeded_users=1000,
        total_requests=requests,
        total_failures=failures,
        throughput_rps=requests / 10,
        latency_ms={"p50": 1200, "p90": 1500, "p99": 1900, "max": 2500, "avg": 1200},
        routes=[login],
        errors=errors,
    )


def test_a_run_at_the_hashing_limit_reads_as_saturated_with_each_outcome_apart() -> None:
    errors = [
        ErrorCount(503, "service_unavailable", "POST /auth/login", 200),
        ErrorCount(429, "rate_limited", "POST /auth/login", 30),
    ]
    summary = with_outcomes(_summary(930, errors), 10, 70.0)
    assert summary.goodput_rps == 70.0
    assert summary.shed_rps == 20.0
    assert summary.limited_rps == 3.0
    assert summary.saturated is True
    text = render(summary)
    assert "goodput 70.0 successful answers (200)/s, shed 20.0 (503)/s, limited 3.0" in text
    assert "SATURATED" in text and "64 clients / 70 checks/s = 0.91 s" in text


def test_a_light_run_reads_as_not_saturated() -> None:
    summary = with_outcomes(_summary(100, []), 10, 70.0)
    assert summary.goodput_rps == 10.0 and summary.saturated is False
    assert "not saturated" in render(summary)
