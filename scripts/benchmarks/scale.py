"""Scale mode of scripts/bench: does login slow down with 1,000,000 users, and does Redis
memory come back once 1,000,000 revoked tokens have outlived their TTLs?"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass

from api.config.settings import Settings
from db.redis_pool import create_redis
from db.revocation_store import RevocationStore
from scripts.benchmarks.wrk import run_wrk
from scripts.hypercorn_server import Server
from scripts.seed import delete_seeded, hash_password, seed_email, seed_users

PASSWORD = "scale passphrase 0123456789"
PREFIX = "bench-scale"
CONCURRENT_WRITES = 500


@dataclass
class ScaleFigures:
    login_p50_small_ms: float
    login_p50_large_ms: float
    users_small: int
    users_large: int
    seed_seconds: float
    revoked_tokens: int
    revoke_seconds: float
    redis_bytes_before: int
    redis_bytes_revoked: int
    redis_bytes_after_ttl: int


async def _revoke_tokens(settings: Settings, count: int, ttl: int) -> None:
    redis = create_redis(settings.redis_url, pool_size=20, timeout=10, client_name="bench-scale")
    store = RevocationStore(redis)
    user_ids = [str(uuid.uuid4()) for _ in range(1000)]
    try:
        for start in range(0, count, CONCURRENT_WRITES):
            await asyncio.gather(
                *(
                    store.revoke_token(user_ids[i % len(user_ids)], str(uuid.uuid4()), ttl)
                    for i in range(start, min(start + CONCURRENT_WRITES, count))
                )
            )
    finally:
        await redis.aclose()
        await redis.connection_pool.disconnect()


async def _redis_memory(settings: Settings) -> int:
    redis = create_redis(settings.redis_url, pool_size=1, timeout=10, client_name="bench-scale")
    try:
        info = await redis.info("memory")
        return int(info["used_memory"])
    finally:
        await redis.aclose()
        await redis.connection_pool.disconnect()


def _login_p50(port: int, env: dict[str, str], email: str, seconds: int) -> float:
    with Server(env, port=port):
        body = json.dumps({"email": email, "password": PASSWORD})
        url = f"http://127.0.0.1:{port}/auth/login"
        headers = {"Content-Type": "application/json"}
        run_wrk(url, seconds=2, connections=8, body=body, headers=headers)
        result = run_wrk(url, seconds=seconds, connections=8, body=body, headers=headers)
        if set(result.statuses) != {200}:
            raise SystemExit(f"scale login answered {result.statuses}")
        return result.p50_ms


def run_scale(
    settings: Settings,
    env: dict[str, str],
    *,
    port: int,
    users: int,
    tokens: int,
    ttl: int,
    seconds: int,
) -> ScaleFigures:
    """Seed, measure, revoke, wait for the TTLs, measure again; delete what it made."""
    password_hash = hash_password(PASSWORD, settings)
    small = 1000
    probe = seed_email(PREFIX, 0)
    try:
        asyncio.run(
            seed_users(
                settings.database_url,
                small,
                password=PASSWORD,
                email_prefix=PREFIX,
                password_hash=password_hash,
            )
        )
        p50_small = _login_p50(port, env, probe, seconds)
        print(f"  login p50 with {small:,} seeded users: {p50_small:.2f} ms", flush=True)

        started = time.monotonic()
        asyncio.run(
            seed_users(
                settings.database_url,
                users,
                password=PASSWORD,
                email_prefix=PREFIX,
                password_hash=password_hash,
            )
        )
        seed_seconds = time.monotonic() - started
        print(f"  seeded {users:,} users in {seed_seconds:.1f} s", flush=True)
        p50_large = _login_p50(port, env, probe, seconds)
        print(f"  login p50 with {users:,} seeded users: {p50_large:.2f} ms", flush=True)

        before = asyncio.run(_redis_memory(settings))
        started = time.monotonic()
        asyncio.run(_revoke_tokens(settings, tokens, ttl))
        revoke_seconds = time.monotonic() - started
        revoked = asyncio.run(_redis_memory(settings))
        print(
            f"  revoked {tokens:,} tokens in {revoke_seconds:.1f} s: Redis "
            f"{before / 2**20:.1f} MiB -> {revoked / 2**20:.1f} MiB",
            flush=True,
        )
        deadline = time.monotonic() + ttl + 120
        time.sleep(ttl + 1)
        after = asyncio.run(_redis_memory(settings))
        # Redis reclaims expired keys in the background, a sample at a time.
        while after > before + (revoked - before) * 0.05 and time.monotonic() < deadline:
            time.sleep(2)
            after = asyncio.run(_redis_memory(settings))
        print(f"  after the {ttl} s TTLs passed: Redis {after / 2**20:.1f} MiB", flush=True)
    finally:
        asyncio.run(delete_seeded(settings.database_url, PREFIX))
    return ScaleFigures(
        login_p50_small_ms=p50_small,
        login_p50_large_ms=p50_large,
        users_small=small,
        users_large=users,
        seed_seconds=seed_seconds,
        revoked_tokens=tokens,
        revoke_seconds=revoke_seconds,
        redis_bytes_before=before,
        redis_bytes_revoked=revoked,
        redis_bytes_after_ttl=after,
    )
