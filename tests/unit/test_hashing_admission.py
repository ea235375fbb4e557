"""Hashing admission: fair queues per client address, proven addresses first, shedding by
expected wait. Driven without threads: a test plays the hashing threads' part."""

from __future__ import annotations

import asyncio

import pytest

from api.domain.errors import HashingBusy
from api.errors import problem_parts
from api.security.hashing_admission import HashingAdmission, ProvenAddresses


async def _queued(admission: HashingAdmission, key: str, served: list[str]) -> asyncio.Task[None]:
    async def wait() -> None:
        await admission.turn(key)
        served.append(key)

    task = asyncio.create_task(wait())
    await asyncio.sleep(0)
    return task


async def _serve_all(admission: HashingAdmission, count: int) -> None:
    for _ in range(count):
        admission.finished(0.01)
        await asyncio.sleep(0)


async def test_waiting_checks_are_served_round_robin_across_addresses() -> None:
    admission = HashingAdmission(threads=1, wait_budget=60, queue_max=100)
    await admission.turn("busy")  # the one thread
    served: list[str] = []
    tasks = [await _queued(admission, "flood", served) for _ in range(5)]
    tasks.append(await _queued(admission, "quiet", served))
    await _serve_all(admission, 6)
    await asyncio.gather(*tasks)
    assert served[:2] == ["flood", "quiet"]
    assert admission.waiting == 0


async def test_proven_addresses_are_served_before_the_others() -> None:
    admission = HashingAdmission(threads=1, wait_budget=60, queue_max=100)
    admission.proven.add("owner")
    await admission.turn("busy")
    served: list[str] = []
    tasks = [await _queued(admission, f"10.0.0.{n}", served) for n in range(5)]
    tasks.append(await _queued(admission, "owner", served))
    await _serve_all(admission, 6)
    await asyncio.gather(*tasks)
    assert served[0] == "owner"


async def test_a_check_beyond_the_wait_budget_is_refused_at_once() -> None:
    admission = HashingAdmission(threads=1, wait_budget=0.045, queue_max=100)
    await admission.turn("busy")
    admission.finished(0.01)  # the mean: 10 ms a check
    await admission.turn("busy")
    served: list[str] = []
    tasks = [await _queued(admission, f"10.0.0.{n}", served) for n in range(4)]
    with pytest.raises(HashingBusy):
        admission.check("10.0.0.99")  # refused before any other work
    with pytest.raises(HashingBusy) as refused:
        await admission.turn("10.0.0.99")
    status, headers, _ = problem_parts(refused.value)
    assert status == 503 and ("Retry-After", "2") in headers
    assert admission.expected_wait("10.0.0.99") == pytest.approx(0.05)
    await _serve_all(admission, 5)
    await asyncio.gather(*tasks)
    assert admission.waiting == 0


async def test_one_address_flooding_is_refused_while_a_quiet_one_gets_in() -> None:
    admission = HashingAdmission(threads=1, wait_budget=0.045, queue_max=100)
    await admission.turn("busy")
    admission.finished(0.01)
    await admission.turn("busy")
    served: list[str] = []
    flood = [await _queued(admission, "flood", served) for _ in range(4)]
    with pytest.raises(HashingBusy):
        await admission.turn("flood")  # its own queue is the wait
    quiet = await _queued(admission, "quiet", served)
    await _serve_all(admission, 5)
    await asyncio.gather(quiet, *flood)
    assert served.index("quiet") <= 1


async def test_at_the_queue_bound_a_quiet_address_displaces_the_longest_queues_newest() -> None:
    admission = HashingAdmission(threads=1, wait_budget=60, queue_max=4)
    await admission.turn("busy")
    served: list[str] = []
    flood = [await _queued(admission, "flood", served) for _ in range(4)]
    quiet = await _queued(admission, "quiet", served)
    outcomes = await asyncio.gather(*flood[3:], return_exceptions=True)
    assert isinstance(outcomes[0], HashingBusy)
    with pytest.raises(HashingBusy):
        await admission.turn("flood")  # it would be served after every check waiting
    await _serve_all(admission, 4)
    await asyncio.gather(quiet, *flood[:3])
    assert served.index("quiet") <= 1


async def test_a_proven_address_displaces_an_unproven_check_at_the_bound() -> None:
    admission = HashingAdmission(threads=1, wait_budget=60, queue_max=4)
    admission.proven.add("owner")
    await admission.turn("busy")
    served: list[str] = []
    others = [await _queued(admission, f"10.0.0.{n}", served) for n in range(4)]
    with pytest.raises(HashingBusy):
        await admission.turn("10.0.0.99")
    owner = await _queued(admission, "owner", served)
    await _serve_all(admission, 5)
    outcomes = await asyncio.gather(owner, *others, return_exceptions=True)
    assert served[0] == "owner"
    assert sum(isinstance(o, HashingBusy) for o in outcomes) == 1


async def test_a_cancelled_waiter_leaves_its_place_and_never_takes_a_thread() -> None:
    admission = HashingAdmission(threads=1, wait_budget=60, queue_max=100)
    await admission.turn("busy")
    served: list[str] = []
    gone = await _queued(admission, "gone", served)
    stays = await _queued(admission, "stays", served)
    gone.cancel()
    admission.finished(0.01)  # before the cancelled task ran: its future is skipped
    await asyncio.gather(gone, return_exceptions=True)
    await stays
    assert served == ["stays"]
    assert admission.waiting == 0
    admission.finished(0.01)
    await admission.turn("next")  # the thread is free again: no waiting
    assert admission.waiting == 0


async def test_many_concurrent_checks_keep_the_counts_right() -> None:
    admission = HashingAdmission(threads=2, wait_budget=0.2, queue_max=30)
    outcomes: list[str] = []

    async def check(n: int) -> None:
        try:
            await admission.turn(f"10.0.{n % 7}.{n % 13}")
        except HashingBusy:
            outcomes.append("busy")
            return
        await asyncio.sleep(0.001)
        admission.finished(0.01)
        outcomes.append("done")

    for _ in range(20):
        await asyncio.gather(*(check(n) for n in range(200)))
        assert admission.waiting == 0
        await admission.turn("x")
        await admission.turn("y")  # both threads are free again
        admission.finished(None)
        admission.finished(None)
    assert outcomes.count("done") > 0 and outcomes.count("busy") > 0


def test_proven_addresses_are_forgotten_after_their_time_and_beyond_the_bound() -> None:
    now = [0.0]
    proven = ProvenAddresses(size=2, seconds=10, clock=lambda: now[0])
    proven.add("a")
    proven.add("b")
    proven.add("c")
    assert "a" not in proven and "b" in proven and "c" in proven
    now[0] = 10.0
    assert "b" not in proven
