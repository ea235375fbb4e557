"""The floor of scripts/bench --login: the least a login kept in Postgres does.

Served by Hypercorn like the API and hash_only.py, with the service's argon2id parameters
and hashing threads: every POST reads the account by its address (one statement),
verifies the password on those threads, signs an access and a refresh token (HS256,
PyJWT) and records the session (one INSERT into `sessions`), on asyncpg's own pool, which
is told not to reset a connection it takes back (one round trip less than its default).
No limits, no fair queue, no audit event, no device token, no validation beyond the
JSON: what it reaches beside the raw rate (f) bounds what any login that reads its
account and writes its session in Postgres reaches on this host, whatever it is written
in on top of Hypercorn and asyncpg.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import jwt

from scripts.benchmarks.stand_in import answer, hasher, lifespan, read_body, settings, threads

_READ = "SELECT id, password_hash, role, version, disabled FROM users WHERE email_normalised = $1"
_OPEN = (
    "INSERT INTO sessions (id, user_id, device_name, ip, user_agent, current_refresh_jti, "
    "expires_at, user_version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
)
# Its tokens are never presented: only signing them counts.
_SIGNING_KEY = secrets.token_urlsafe(48)
_FAILED = json.dumps({"code": "invalid_credentials"}).encode()


async def _no_reset(_connection: asyncpg.Connection) -> None:
    """Nothing to undo: these statements leave no state on the connection."""


class Floor:
    def __init__(self) -> None:
        self.pool: asyncpg.Pool | None = None

    async def start(self) -> None:
        url = settings.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
        self.pool = await asyncpg.create_pool(
            url, min_size=2, max_size=settings.db_pool_size, reset=_no_reset
        )

    async def login(self, body: bytes, client: str) -> tuple[int, bytes]:
        assert self.pool is not None
        request = json.loads(body)
        async with self.pool.acquire() as connection:
            row = await connection.fetchrow(_READ, request["email"].strip().lower())
        if row is None or row["disabled"]:
            return 401, _FAILED
        loop = asyncio.get_running_loop()
        matches = await loop.run_in_executor(threads, _verify, row["password_hash"], request)
        if not matches:
            return 401, _FAILED
        session_id, refresh_jti, now = uuid.uuid4(), uuid.uuid4(), time.time()
        expires_at = datetime.fromtimestamp(now, UTC) + timedelta(
            seconds=settings.refresh_token_ttl
        )
        claims = {"sub": str(row["id"]), "sid": str(session_id), "iat": now, "nbf": int(now)}
        access = _sign(
            {**claims, "type": "access", "role": row["role"], "jti": str(uuid.uuid4()),
             "exp": int(now) + settings.access_token_ttl}
        )  # fmt: skip
        refresh = _sign(
            {**claims, "type": "refresh", "jti": str(refresh_jti),
             "exp": int(expires_at.timestamp())}
        )  # fmt: skip
        async with self.pool.acquire() as connection:
            await connection.execute(
                _OPEN, session_id, row["id"], request.get("device_name"), client,
                None, refresh_jti, expires_at, row["version"],
            )  # fmt: skip
        return 200, json.dumps(
            {"access_token": access, "refresh_token": refresh, "token_type": "Bearer",
             "expires_in": settings.access_token_ttl, "session_id": str(session_id)}
        ).encode()  # fmt: skip

    async def stop(self) -> None:
        if self.pool is not None:
            await self.pool.close()


def _verify(password_hash: str, request: dict[str, Any]) -> bool:
    try:
        return hasher.verify(password_hash, request["password"])
    except Exception:
        return False


def _sign(payload: dict[str, Any]) -> str:
    return jwt.encode(payload, _SIGNING_KEY, "HS256")


_floor = Floor()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send, start=_floor.start, stop=_floor.stop)
        return
    if scope["type"] != "http":
        return
    body = await read_body(receive)
    if scope["path"] == "/healthz":
        await answer(send, 200, b"{}")
        return
    await answer(send, *await _floor.login(body, scope["client"][0]))
