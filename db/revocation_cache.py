"""RevocationCache: the revocation answers one worker read, kept while Redis tells it of
every change (REVOCATION_CACHE).

It serves only while the worker's subscription to the store's invalidation channel is
confirmed (db/revocation_channel.py): `serve()` and `bypass()` flush it, and while
bypassed every lookup misses, so the worker asks Redis every time (fails closed).

A fill must not outlive an invalidation it raced with: a request takes a `ticket()`
before its MGET and `put()` keeps the answer only if nothing was invalidated, flushed or
bypassed since. An answer read before a revocation was written can therefore never be
stored after the message that announced it.

Only the worker's event loop calls it; nothing here awaits, so each call is atomic.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from db.revocation_store import Revocation

# (user_id, session_id, jti): what one MGET is asked about.
TokenKey = tuple[str, str, str]


@dataclass(frozen=True)
class Ticket:
    """Taken before asking Redis: the cache generation the answer will belong to."""

    generation: int


@dataclass(frozen=True)
class _Entry:
    verdict: Revocation
    until: float  # on the monotonic clock


class RevocationCache:
    def __init__(
        self,
        *,
        max_age: float,
        size: int,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_age = max_age
        self._size = size
        self._clock = clock
        self._monotonic = monotonic
        # Insertion order is age order: the first entry is the one evicted.
        self._entries: dict[TokenKey, _Entry] = {}
        self._by_user: dict[str, set[TokenKey]] = {}
        self._generation = 0
        self._serving = False

    @property
    def serving(self) -> bool:
        """Whether answers are kept and served (the subscription is confirmed)."""
        return self._serving

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: TokenKey) -> Revocation | None:
        """The remembered answer, or None: ask Redis."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.until <= self._monotonic():
            self._forget(key)
            return None
        return entry.verdict

    def ticket(self) -> Ticket | None:
        """What `put` needs to keep an answer about to be read; None while bypassed."""
        return Ticket(self._generation) if self._serving else None

    def put(self, ticket: Ticket | None, key: TokenKey, verdict: Revocation, exp: float) -> None:
        """Keep `verdict` for the token expiring at `exp` (a Unix time), unless anything was
        invalidated since `ticket` was taken."""
        if ticket is None or ticket.generation != self._generation or not self._serving:
            return
        lifetime = min(self._max_age, exp - self._clock())
        if lifetime <= 0:
            return
        self._forget(key)  # re-inserted last: it is the youngest now
        while len(self._entries) >= self._size:
            self._forget(next(iter(self._entries)))
        self._entries[key] = _Entry(verdict, self._monotonic() + lifetime)
        self._by_user.setdefault(key[0], set()).add(key)

    def invalidate(self, user_id: str) -> None:
        """Forget the user's answers, and refuse every fill already under way."""
        self._generation += 1
        for key in self._by_user.pop(user_id, ()):
            del self._entries[key]

    def serve(self) -> None:
        """The subscription is confirmed: start from nothing, and keep answers from now on."""
        self._flush()
        self._serving = True

    def bypass(self) -> None:
        """The subscription is lost (or not yet confirmed): forget everything, keep nothing."""
        self._flush()
        self._serving = False

    def _flush(self) -> None:
        self._generation += 1
        self._entries.clear()
        self._by_user.clear()

    def _forget(self, key: TokenKey) -> None:
        if self._entries.pop(key, None) is None:
            return
        keys = self._by_user[key[0]]
        keys.discard(key)
        if not keys:
            del self._by_user[key[0]]
