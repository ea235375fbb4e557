"""Who gets the next password-hashing thread when they are all busy, and who is refused.

Hashing is the machine's limit (DESIGN.md, "Overload and admission"). When every thread
is busy, a check waits in a queue of its client's address (the per-IP limit's key: an
IPv4 address or an IPv6 network), and the queues are served round-robin, so an address
with many checks waiting delays its own checks, not everyone's. Addresses that passed a
password check lately ("proven") are served before the others: per-address fairness
alone gives a quiet address 1/(N+1) of the hashing when N others flood it, which is less
than one check a second on a small host as soon as a flood has a hundred addresses.

A check is refused at once (`HashingBusy`, a cheap 503) when the wait it would see, the
checks served before it times the measured mean hashing time, over the threads, is
beyond the budget; unless a waiting check would be served after it, which is then
refused in its place (the newest check of the longest queue of unproven addresses).

Runs on one event loop (the worker's); the hashing threads report back through it.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from api.domain.errors import HashingBusy

# Weight of the newest hashing time in the running mean: steady, yet follows a change of
# load on the host within a few dozen checks.
MEAN_WEIGHT = 0.05
# Addresses remembered as proven, per worker process, and for how long.
PROVEN_MAX = 50_000
PROVEN_SECONDS = 24 * 3600.0

Queues = OrderedDict[str, deque[asyncio.Future[None]]]


class ProvenAddresses:
    """The client keys that passed a password check lately (bounded, oldest forgotten)."""

    def __init__(
        self,
        *,
        size: int = PROVEN_MAX,
        seconds: float = PROVEN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._until: OrderedDict[str, float] = OrderedDict()
        self._size = size
        self._seconds = seconds
        self._clock = clock

    def add(self, key: str) -> None:
        """Remember `key` as proven from now on."""
        self._until[key] = self._clock() + self._seconds
        self._until.move_to_end(key)
        while len(self._until) > self._size:
            self._until.popitem(last=False)

    def __contains__(self, key: str) -> bool:
        until = self._until.get(key)
        if until is None:
            return False
        if until <= self._clock():
            del self._until[key]
            return False
        return True


class HashingAdmission:
    """The hashing threads' admission: fair queues per client key, shedding by expected wait."""

    def __init__(
        self,
        *,
        threads: int,
        wait_budget: float,
        queue_max: int,
        proven: ProvenAddresses | None = None,
    ) -> None:
        self._threads = threads
        self._budget = wait_budget
        self._queue_max = queue_max
        self.proven = proven if proven is not None else ProvenAddresses()
        self._running = 0
        self._waiting = 0
        # Proven addresses' queues, then the others'; each served round-robin in key order.
        self._classes: tuple[Queues, Queues] = (OrderedDict(), OrderedDict())
        self.mean_seconds: float | None = None

    @property
    def waiting(self) -> int:
        """Checks waiting for a thread."""
        return self._waiting

    def expected_wait(self, key: str) -> float:
        """Seconds a new check of `key` would wait for a thread, as far as known now."""
        if self._running < self._threads and not self._waiting:
            return 0.0
        return self._ahead(key) * (self.mean_seconds or 0.0) / self._threads

    async def turn(self, key: str) -> None:
        """Wait until a hashing thread is free for `key`'s check; `finished` must follow.

        Raises:
            HashingBusy: its wait would be beyond the budget, or it was displaced while
                waiting by a check that would otherwise be served after it.
        """
        if self._running < self._threads and not self._waiting:
            self._running += 1
            return
        self._admit(key)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queues = self._classes[self._class_of(key)]
        queues.setdefault(key, deque()).append(future)
        self._waiting += 1
        try:
            await future
        except BaseException:
            if future.cancelled() or not future.done():
                self._remove(queues, key, future)
            elif future.exception() is None:
                self.finished(None)  # handed a thread just as its caller gave up
            raise

    def finished(self, seconds: float | None) -> None:
        """A check's thread is free again (`seconds`: how long it hashed, None if unknown)."""
        if seconds is not None:
            if self.mean_seconds is None:
                self.mean_seconds = seconds
            else:
                self.mean_seconds += MEAN_WEIGHT * (seconds - self.mean_seconds)
        self._running -= 1
        future = self._next()
        while future is not None and future.cancelled():
            future = self._next()  # its caller is gone; it was not removed yet
        if future is not None:
            self._running += 1
            future.set_result(None)

    def _next(self) -> asyncio.Future[None] | None:
        """The next waiting check, round-robin: proven addresses first; out of its queue."""
        for queues in self._classes:
            if queues:
                key, waiters = next(iter(queues.items()))
                future = waiters.popleft()
                if waiters:
                    queues.move_to_end(key)
                else:
                    del queues[key]
                self._waiting -= 1
                return future
        return None

    def _class_of(self, key: str) -> int:
        return 0 if key in self.proven else 1

    def _ahead(self, key: str) -> int:
        """Checks served before a new one of `key`, round-robin, and that one itself."""
        rank = self._class_of(key)
        ahead = sum(len(waiters) for q in self._classes[:rank] for waiters in q.values())
        own = len(self._classes[rank].get(key, ()))
        ahead += sum(min(len(waiters), own + 1) for waiters in self._classes[rank].values())
        return ahead + 1

    def check(self, key: str) -> None:
        """Refuse now, before any other work, a check of `key` that `turn` would refuse.

        Raises:
            HashingBusy: its wait would be beyond the budget and nothing would give way.
        """
        if self._running < self._threads and not self._waiting:
            return
        if self._over(key) and self._victim_for(key) is None:
            raise HashingBusy()

    def _over(self, key: str) -> bool:
        over_budget = (
            self.mean_seconds is not None
            and self._ahead(key) * self.mean_seconds / self._threads > self._budget
        )
        return over_budget or self._waiting >= self._queue_max

    def _admit(self, key: str) -> None:
        if not self._over(key):
            return
        victim = self._victim_for(key)
        if victim is None:
            raise HashingBusy()
        victim_key, queues = victim
        future = queues[victim_key].pop()
        if not queues[victim_key]:
            del queues[victim_key]
        self._waiting -= 1
        future.set_exception(HashingBusy())

    def _victim_for(self, key: str) -> tuple[str, Queues] | None:
        """The queue whose newest check would be served after a new one of `key`, if any."""
        rank = self._class_of(key)
        position = (rank, len(self._classes[rank].get(key, ())))
        for victim_rank in (1, 0):
            queues = self._classes[victim_rank]
            if not queues:
                continue
            longest = max(queues, key=lambda k: len(queues[k]))
            if (victim_rank, len(queues[longest]) - 1) > position:
                return longest, queues
            return None
        return None

    def _remove(self, queues: Queues, key: str, future: asyncio.Future[None]) -> None:
        waiters = queues.get(key)
        if waiters is None or future not in waiters:
            return
        waiters.remove(future)
        if not waiters:
            del queues[key]
        self._waiting -= 1
