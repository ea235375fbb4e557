"""What the stand-in logins of scripts/bench --login share (hash_only.py, postgres_floor.py):
the service's argon2id parameters and hashing threads, and the ASGI plumbing of a server
that answers every POST the same way."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from argon2 import PasswordHasher, Type

from api.config.settings import Settings

settings = Settings.from_env()
hasher = PasswordHasher(
    time_cost=settings.argon2_time_cost,
    memory_cost=settings.argon2_memory_kib,
    parallelism=settings.argon2_parallelism,
    type=Type.ID,
)
# As many per worker as the service gives its workers (HASH_WORKERS).
threads = ThreadPoolExecutor(settings.hash_workers, thread_name_prefix="hash")


async def lifespan(
    receive: Any,
    send: Any,
    *,
    start: Callable[[], Awaitable[None]] | None = None,
    stop: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Answer Hypercorn's lifespan messages: `start` before startup completes; `stop` and
    the hashing threads stopped before shutdown completes."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if start is not None:
                await start()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if stop is not None:
                await stop()
            threads.shutdown(wait=False, cancel_futures=True)
            await send({"type": "lifespan.shutdown.complete"})
            return


async def read_body(receive: Any) -> bytes:
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


async def answer(send: Any, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
