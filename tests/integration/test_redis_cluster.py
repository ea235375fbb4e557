"""The session, revocation and rate-limit suites, run again against a real 3-master Redis
Cluster (REDIS_CLUSTER=true): every multi-key command must stay inside one hash slot.

The suites' tests are imported here, so they run a second time in this module, where
`settings` points at the cluster. Tests that stop a Redis of their own stay out: that
Redis is not a cluster."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from redis.asyncio.cluster import RedisCluster

from api.config.settings import Settings
from tests.integration.conftest import Harness, bearer
from tests.integration.test_logout_and_sessions import (  # noqa: F401
    test_delete_already_revoked_session_is_not_found,
    test_delete_session_of_another_user_or_unknown_is_not_found,
    test_delete_session_signs_out_that_device_only,
    test_logout_all_revokes_every_device_and_allows_a_new_login,
    test_logout_revokes_every_access_token_of_the_session,
    test_logout_revokes_only_the_current_session,
    test_verify_answers_204_with_identity_headers,
    test_verify_lane_and_flask_view_refuse_a_revoked_token_alike,
)
from tests.integration.test_rate_limits import (  # noqa: F401
    hashing_calls,
    limited,
    test_failed_logins_from_many_ips_lock_the_account_even_for_the_right_password,
    test_login_over_the_ip_limit_is_refused_before_hashing,
    test_registration_over_the_ip_limit_is_refused,
    test_simultaneous_wrong_logins_check_at_most_the_limit_of_passwords,
    test_successful_logins_give_their_reservation_back,
    test_wrong_passwords_on_every_route_share_one_account_limit,
)
from tests.integration.test_refresh import (  # noqa: F401
    test_refresh_after_logout_is_token_revoked,
    test_refresh_rotates_the_refresh_token_and_issues_non_fresh_access,
    test_refresh_token_reused_after_grace_revokes_session,
    test_superseded_refresh_token_within_grace_gets_the_current_link,
)
from tests.integration.test_revocation_cache import (  # noqa: F401
    name,
    test_a_revocation_through_one_worker_is_refused_by_the_other_once_heard,
    workers,
)
from tests.integration.test_revocation_keys import (  # noqa: F401
    test_logout_all_writes_a_before_mark_and_a_mark_per_session_lasting_a_refresh_lifetime,
    test_logout_writes_jti_and_session_keys_with_their_remaining_lifetimes,
)
from tests.integration.test_round_trips import count_io
from tests.redis_cluster import OwnRedisCluster

# Error replies that would mean a command left its slot (CROSSSLOT) or was sent to the
# wrong node and redirected (MOVED, ASK): the client hides redirects, the nodes count them.
pytestmark = pytest.mark.heavy

SLOT_ERRORS = ("CROSSSLOT", "MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN")


@pytest.fixture(scope="module")
def redis_cluster() -> Iterator[OwnRedisCluster]:
    cluster = OwnRedisCluster()
    try:
        cluster.start()
        yield cluster
        errors = {k: v for k, v in cluster.error_counts().items() if k in SLOT_ERRORS}
        print(f"\ncluster error replies over the module: {errors or 'none'}")
        assert not errors, errors
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def settings(settings: Settings, redis_cluster: OwnRedisCluster) -> Settings:
    """The test settings, with Redis Cluster behind REDIS_URL."""
    return replace(settings, redis_url=redis_cluster.url, redis_cluster=True)


async def test_the_runtime_holds_a_cluster_client(harness: Harness) -> None:
    assert isinstance(harness.resources.redis, RedisCluster)


async def test_readiness_answers_through_the_cluster(harness: Harness) -> None:
    response = await harness.client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["redis"] == "ok"


async def test_verify_on_a_cluster_costs_one_round_trip(harness: Harness) -> None:
    await harness.register("cluster-hot@example.com")
    tokens = await harness.login("cluster-hot@example.com")
    async with count_io(harness) as sent:
        response = await harness.client.get("/auth/verify", headers=bearer(tokens["access_token"]))
    assert response.status_code == 204
    assert sent == {"postgres": [], "redis": ["MGET"]}


async def test_many_users_spread_over_every_node_and_each_is_revoked_on_its_own(
    harness: Harness, redis_cluster: OwnRedisCluster
) -> None:
    # Keys follow the users' random ids: with 24 users logging out everywhere, a node of
    # three is left empty in about 1 run of 5,000 (3 x (2/3)^24); with 12 it was 1 in 40.
    users = 48
    emails = [f"cluster-{i}@example.com" for i in range(users)]
    for email in emails:
        await harness.register(email)
    logins = [await harness.login(email) for email in emails]
    headers = [bearer(tokens["access_token"]) for tokens in logins]
    # Every other user logs out everywhere (one after the other: the harness's rolled-back
    # transaction is one connection); then every token is checked at once.
    for h in headers[::2]:
        assert (await harness.client.post("/auth/logout-all", headers=h)).status_code == 204
    verdicts: list[Any] = await asyncio.gather(
        *(harness.client.get("/auth/verify", headers=h) for h in headers)
    )
    statuses = [r.status_code for r in verdicts]
    per_node = redis_cluster.keys_per_node()
    print(f"\nverify after logout-all of every other user: {statuses.count(401)} x 401, "
          f"{statuses.count(204)} x 204; keys per node {per_node}")  # fmt: skip
    assert statuses == [401 if i % 2 == 0 else 204 for i in range(users)]
    assert all(count > 0 for count in per_node), per_node
