"""A load balancer the way a real one behaves, run inside the test: round robin over the
hosts whose /readyz answered 200 at the last probe (every 0.1 s), a host that answers
503 or not at all taken out until it answers 200 again, and a request whose connection
was refused (nothing sent) retried on the next host."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

PROBE_INTERVAL = 0.1
PROBE_TIMEOUT = 0.5


@dataclass
class Tally:
    """What the balancer saw, by whether the host was healthy when it was picked."""

    answers: Counter[str] = field(default_factory=Counter)
    failed_at_healthy: list[str] = field(default_factory=list)
    failed_at_draining: list[str] = field(default_factory=list)
    sent_to_draining: int = 0
    refused_and_retried: int = 0
    by_host: Counter[str] = field(default_factory=Counter)


class Balancer:
    """Round robin over the ready hosts of a pool that the test changes while it runs."""

    def __init__(self, hosts: list[str]) -> None:
        self.tally = Tally()
        self._hosts = list(hosts)
        self._ready: set[str] = set()
        self._draining: set[str] = set()  # told to stop; the balancer itself does not know
        self._turn = itertools.count()
        # No keep-alive: every request opens its connection, as many balancers do.
        self._client = httpx.AsyncClient(
            timeout=30, limits=httpx.Limits(max_keepalive_connections=0)
        )
        self._prober: asyncio.Task[None] | None = None
        self._probed = asyncio.Event()  # set after each round of probes, then replaced

    async def __aenter__(self) -> Balancer:
        await self._probe_all()
        self._prober = asyncio.create_task(self._probe_forever())
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._prober is not None:
            self._prober.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._prober
        await self._client.aclose()

    def add(self, host: str) -> None:
        self._hosts.append(host)

    def remove(self, host: str) -> None:
        self._hosts.remove(host)
        self._ready.discard(host)

    def mark_draining(self, host: str) -> None:
        """The test is about to signal `host`: requests picked from now on did not reach
        a healthy host (the balancer learns it at its next probe)."""
        self._draining.add(host)

    async def ready(self, host: str) -> None:
        """Wait until the balancer sends to `host`."""
        while host not in self._ready:
            await self._probed.wait()

    async def request(self, method: str, path: str, expected: int, **kwargs: Any) -> Any:
        """Send through the pool; the response when it answered `expected`, else None."""
        tally = self.tally
        while True:
            host = self._pick()
            if host is None:
                await asyncio.sleep(PROBE_INTERVAL)
                continue
            draining = host in self._draining
            tally.sent_to_draining += draining
            try:
                response = await self._client.request(method, host + path, **kwargs)
            except httpx.ConnectError:
                tally.refused_and_retried += 1  # nothing was sent: safe to send elsewhere
                await asyncio.sleep(0.01)
                continue
            except httpx.TransportError as error:
                failure = f"{method} {path}: {type(error).__name__}"
                (tally.failed_at_draining if draining else tally.failed_at_healthy).append(failure)
                return None
            tally.answers[f"{method} {path.split('?')[0]} {response.status_code}"] += 1
            tally.by_host[host] += 1
            if response.status_code != expected:
                failure = f"{method} {path}: {response.status_code} {response.text[:200]}"
                (tally.failed_at_draining if draining else tally.failed_at_healthy).append(failure)
                return None
            return response

    def _pick(self) -> str | None:
        ready = [h for h in self._hosts if h in self._ready]
        return ready[next(self._turn) % len(ready)] if ready else None

    async def _probe_forever(self) -> None:
        while True:
            await asyncio.sleep(PROBE_INTERVAL)
            await self._probe_all()
            self._probed.set()
            self._probed = asyncio.Event()

    async def _probe_all(self) -> None:
        await asyncio.gather(*(self._probe(host) for host in list(self._hosts)))

    async def _probe(self, host: str) -> None:
        try:
            response = await self._client.get(host + "/readyz", timeout=PROBE_TIMEOUT)
            ready = response.status_code == 200
        except httpx.TransportError:
            ready = False
        if ready and host in self._hosts:
            self._ready.add(host)
        else:
            self._ready.discard(host)
