"""SecondFactorStore: login challenges (`mfa_token`) and used TOTP codes, in Redis."""

from __future__ import annotations

import json
import math
from typing import Any

from db.redis_pool import RedisClient, redis_errors


class SecondFactorStore:
    """Pending logins keyed by a hash of their `mfa_token`, and each user's used codes."""

    def __init__(self, redis: RedisClient, key_prefix: str = "") -> None:
        self._redis = redis
        self._prefix = key_prefix

    def _challenge_key(self, token_hash: str) -> str:
        return f"{self._prefix}mfa:challenge:{token_hash}"

    def _used_key(self, user_id: str, counter: int) -> str:
        return f"{self._prefix}mfa:{{{user_id}}}:used:{counter}"

    async def put_challenge(self, token_hash: str, facts: dict[str, Any], ttl: int) -> None:
        """Remember a login waiting for its second factor for `ttl` seconds."""
        async with redis_errors():
            await self._redis.set(self._challenge_key(token_hash), json.dumps(facts), ex=ttl)

    async def challenge(self, token_hash: str) -> dict[str, Any] | None:
        """The facts of a pending login, if its token is known and unexpired."""
        async with redis_errors():
            raw = await self._redis.get(self._challenge_key(token_hash))
        if raw is None:
            return None
        facts: dict[str, Any] = json.loads(raw)
        return facts

    async def take_challenge(self, token_hash: str) -> bool:
        """End a pending login; True for exactly one of any concurrent callers."""
        async with redis_errors():
            return bool(await self._redis.delete(self._challenge_key(token_hash)))

    async def use_code(self, user_id: str, counter: int, remember_for: float) -> bool:
        """Record the TOTP time step `counter` as used by the user; False if it already was.

        Kept `remember_for` seconds: until no verifier would accept that step's code.
        """
        async with redis_errors():
            taken = await self._redis.set(
                self._used_key(user_id, counter),
                "1",
                nx=True,
                ex=max(math.ceil(remember_for), 1),
            )
        return bool(taken)
