"""What the servers do to Postgres and Redis during a benchmark: commands, transactions,
scans, and the most connections open at once."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

import asyncpg
import redis

# Commands the benchmark itself sends to watch the server; not counted as the app's.
_OWN_COMMANDS = {"info", "client|list", "client", "ping", "config|get"}


@dataclass
class Snapshot:
    redis_commands: int
    transactions: int
    scans: int


def _plain(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


def snapshot(database_url: str, redis_url: str) -> Snapshot:
    """Cumulative counters of the Redis server and of the app's Postgres database."""
    client = redis.Redis.from_url(redis_url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    commands = sum(
        int(value["calls"])
        for name, value in stats.items()
        if name.removeprefix("cmdstat_") not in _OWN_COMMANDS
    )

    async def postgres() -> tuple[int, int]:
        conn = await asyncpg.connect(_plain(database_url))
        try:
            xacts = await conn.fetchval(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database"
                " WHERE datname = current_database()"
            )
            scans = await conn.fetchval(
                "SELECT coalesce(sum(coalesce(seq_scan, 0) + coalesce(idx_scan, 0)), 0)"
                " FROM pg_stat_user_tables WHERE relname IN ('users', 'sessions')"
            )
            return int(xacts), int(scans)
        finally:
            await conn.close()

    transactions, scans = asyncio.run(postgres())
    return Snapshot(commands, transactions, scans)


class ConnectionWatch:
    """Samples, in a thread, how many connections the app holds open to each server."""

    def __init__(self, database_url: str, redis_url: str, application_name: str) -> None:
        self._database_url = _plain(database_url)
        self._redis_url = redis_url
        self._name = application_name
        self._stop = threading.Event()
        self.max_postgres = 0
        self.max_redis = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ConnectionWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        asyncio.run(self._watch())

    async def _watch(self) -> None:
        conn = await asyncpg.connect(self._database_url)
        client = redis.Redis.from_url(self._redis_url)
        try:
            while not self._stop.is_set():
                count = await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                    self._name,
                )
                self.max_postgres = max(self.max_postgres, int(count))
                clients = client.client_list()
                self.max_redis = max(
                    self.max_redis, sum(1 for c in clients if c.get("name") == self._name)
                )
                await asyncio.sleep(0.5)
        finally:
            client.close()
            await conn.close()
