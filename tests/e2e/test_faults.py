"""The short version of scripts/faults: a few seconds of the mobile flow under load while
the script's own Redis is killed and restarted, then its proxy to Postgres cut and
restored. Nothing revoked is accepted, outages answer 503 with Retry-After, the server
recovers without a restart, and nothing written is lost."""

from __future__ import annotations

import pytest

from scripts.faults import Options, run

pytestmark = [pytest.mark.e2e, pytest.mark.heavy]


async def test_redis_and_postgres_outages_under_load_break_no_promise(database_url: str) -> None:
    options = Options(
        users=6,
        concurrency=6,
        phase=1.0,
        outage=1.5,
        recovery_timeout=20,
        database_url=database_url,
    )
    report = await run(options, say=lambda line: print(f"\n{line}", end=""))
    print("\n" + "\n".join(report.lines()))
    assert report.revoked_accepted == 0
    assert report.revoked_tokens_checked > 0
    assert report.bare_5xx == 0
    assert report.unavailable_without_retry_after == 0
    assert report.by_answer.get("503 service_unavailable", 0) > 0  # the outages were seen
    assert report.transport_errors == 0
    assert report.redis_recovery_s is not None
    assert report.postgres_recovery_s is not None
    assert report.users_after == report.users_before == options.users
    assert report.sessions_lost == 0
    assert report.revocations_lost == 0
    assert report.held
