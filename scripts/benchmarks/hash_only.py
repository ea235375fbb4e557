"""The ceiling of scripts/bench --login: a "login" that is nothing but its argon2id check.

Served by Hypercorn like the API, with the service's argon2id parameters and as many
hashing threads per worker as the service gives its workers (HASH_WORKERS): every POST
reads its body, verifies a password against a hash made at start-up on those threads, and
answers a small JSON body. What it reaches beside the raw rate (f) is what any login
served this way can reach on the host: the HTTP server's work and the hashing threads'
hand-offs share the cores with the hashing too.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from argon2 import PasswordHasher, Type

from api.config.settings import Settings

_settings = Settings.from_env()
_hasher = PasswordHasher(
    time_cost=_settings.argon2_time_cost,
    memory_cost=_settings.argon2_memory_kib,
    parallelism=_settings.argon2_parallelism,
    type=Type.ID,
)
_PASSWORD = "hash-only ceiling passphrase"
_HASH = _hasher.hash(_PASSWORD)
_threads = ThreadPoolExecutor(_settings.hash_workers, thread_name_prefix="hash")
_BODY = b'{"verified":true}'
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(_BODY))]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                _threads.shutdown(wait=False, cancel_futures=True)
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(_threads, _hasher.verify, _HASH, _PASSWORD)
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _BODY})
