"""RevocationCache on its own: what it keeps, for how long, and what it refuses to keep.
(The channel that drives it and the verifier that fills it are tested against Redis in
tests/integration/test_revocation_cache.py.)"""

from __future__ import annotations

import time

from db.revocation_cache import RevocationCache, TokenKey
from db.revocation_store import Revocation


class Clocks:
    """A wall clock and a monotonic one that move together, when the test says."""

    def __init__(self) -> None:
        self.wall = time.time()
        self.steady = 1000.0

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.steady += seconds


def _cache(clocks: Clocks, *, max_age: float = 60, size: int = 100) -> RevocationCache:
    cache = RevocationCache(
        max_age=max_age, size=size, clock=lambda: clocks.wall, monotonic=lambda: clocks.steady
    )
    cache.serve()
    return cache


def _key(user: str = "u1", n: int = 1) -> TokenKey:
    return (user, f"s{n}", f"j{n}")


def test_an_answer_is_kept_until_its_max_age() -> None:
    clocks = Clocks()
    cache = _cache(clocks, max_age=30)
    cache.put(cache.ticket(), _key(), Revocation.NONE, clocks.wall + 600)
    assert cache.get(_key()) is Revocation.NONE
    clocks.advance(29.9)
    assert cache.get(_key()) is Revocation.NONE
    clocks.advance(0.1)
    assert cache.get(_key()) is None
    assert len(cache) == 0


def test_an_answer_never_outlives_the_token_exp() -> None:
    clocks = Clocks()
    cache = _cache(clocks, max_age=60)
    cache.put(cache.ticket(), _key(), Revocation.NONE, clocks.wall + 5)
    clocks.advance(5)
    assert cache.get(_key()) is None
    cache.put(cache.ticket(), _key(), Revocation.NONE, clocks.wall - 1)
    assert len(cache) == 0, "an expired token's answer is not kept at all"


def test_an_invalidation_drops_that_user_only() -> None:
    clocks = Clocks()
    cache = _cache(clocks)
    for key in (_key("u1", 1), _key("u1", 2), _key("u2", 1)):
        cache.put(cache.ticket(), key, Revocation.NONE, clocks.wall + 600)
    cache.invalidate("u1")
    assert cache.get(_key("u1", 1)) is None
    assert cache.get(_key("u1", 2)) is None
    assert cache.get(_key("u2", 1)) is Revocation.NONE


def test_a_fill_taken_before_an_invalidation_is_not_kept() -> None:
    clocks = Clocks()
    cache = _cache(clocks)
    ticket = cache.ticket()  # the request asks Redis now...
    cache.invalidate("someone else")  # ...any invalidation is heard meanwhile...
    cache.put(ticket, _key(), Revocation.NONE, clocks.wall + 600)  # ...its answer arrives
    assert cache.get(_key()) is None
    cache.put(cache.ticket(), _key(), Revocation.NONE, clocks.wall + 600)
    assert cache.get(_key()) is Revocation.NONE


def test_nothing_is_kept_or_served_while_bypassed() -> None:
    clocks = Clocks()
    cache = _cache(clocks)
    cache.put(cache.ticket(), _key(), Revocation.REVOKED, clocks.wall + 600)
    before_loss = cache.ticket()
    cache.bypass()
    assert not cache.serving and len(cache) == 0
    assert cache.ticket() is None
    cache.put(None, _key(), Revocation.NONE, clocks.wall + 600)
    assert cache.get(_key()) is None
    cache.serve()
    cache.put(before_loss, _key(), Revocation.NONE, clocks.wall + 600)
    assert cache.get(_key()) is None, "a fill from before the loss is not kept after it"


def test_the_oldest_answer_is_dropped_when_full() -> None:
    clocks = Clocks()
    cache = _cache(clocks, size=3)
    for n in range(1, 5):
        cache.put(cache.ticket(), _key("u1", n), Revocation.NONE, clocks.wall + 600)
    assert len(cache) == 3
    assert cache.get(_key("u1", 1)) is None
    assert all(cache.get(_key("u1", n)) is Revocation.NONE for n in (2, 3, 4))
    cache.invalidate("u1")
    assert len(cache) == 0
