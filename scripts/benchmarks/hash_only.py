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
from typing import Any

from scripts.benchmarks.stand_in import answer, hasher, lifespan, read_body, threads

_PASSWORD = "hash-only ceiling passphrase"
_HASH = hasher.hash(_PASSWORD)
_BODY = b'{"verified":true}'


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    await read_body(receive)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(threads, hasher.verify, _HASH, _PASSWORD)
    await answer(send, 200, _BODY)
