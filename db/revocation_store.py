"""RevocationStore: revoked tokens, sessions and per-user marks in Redis, each with a TTL.

Every key of a user shares the hash tag `{<user_id>}`, so one MGET answers all
four questions even on Redis Cluster.

Every write is followed by a PUBLISH of the user's id on `invalidation_channel`, whether
or not this worker caches answers: workers of another host may (REVOCATION_CACHE,
db/revocation_cache.py). A classic PUBLISH reaches every node of a Redis Cluster, so a
subscriber on any one node hears it.
"""

from __future__ import annotations

import enum
import math

from db.redis_pool import RedisClient, redis_errors


class Revocation(enum.Enum):
    """What the store says about a token."""

    NONE = "none"
    REVOKED = "revoked"
    # Its user is disabled: every token of theirs is refused, whenever it was issued.
    DISABLED = "disabled"


def _ttl(seconds: float) -> int:
    # A key must outlive what it covers, never the reverse: round up.
    return max(math.ceil(seconds), 1)


class RevocationStore:
    def __init__(self, redis: RedisClient, key_prefix: str = "") -> None:
        self._redis = redis
        self._prefix = key_prefix

    @property
    def invalidation_channel(self) -> str:
        """The pub/sub channel that hears the id of every user whose marks were written."""
        return f"{self._prefix}rv:written"

    def user_keys(self, user_id: str) -> str:
        """The pattern every revocation key of the user matches (for SCAN)."""
        return f"{self._prefix}rv:{{{user_id}}}:*"

    def _jti_key(self, user_id: str, jti: str) -> str:
        return f"{self._prefix}rv:{{{user_id}}}:jti:{jti}"

    def _session_key(self, user_id: str, session_id: str) -> str:
        return f"{self._prefix}rv:{{{user_id}}}:sid:{session_id}"

    def _before_key(self, user_id: str) -> str:
        return f"{self._prefix}rv:{{{user_id}}}:before"

    def _disabled_key(self, user_id: str) -> str:
        return f"{self._prefix}rv:{{{user_id}}}:disabled"

    async def revocation(
        self, user_id: str, session_id: str, jti: str, issued_at: float
    ) -> Revocation:
        """Whether the user is disabled, or this token, its session, or everything of its user
        issued by then is revoked.

        Raises:
            StoreUnavailable: Redis did not answer.
        """
        keys = (
            self._jti_key(user_id, jti),
            self._session_key(user_id, session_id),
            self._before_key(user_id),
            self._disabled_key(user_id),
        )
        async with redis_errors():
            token_mark, session_mark, before, disabled = await self._redis.mget(keys)
        if disabled is not None:
            return Revocation.DISABLED
        if token_mark is not None or session_mark is not None:
            return Revocation.REVOKED
        if before is not None and issued_at <= float(before):
            return Revocation.REVOKED
        return Revocation.NONE

    async def revoke_token(self, user_id: str, jti: str, remaining: float) -> None:
        """Revoke one token for the `remaining` seconds it would stay valid."""
        if remaining <= 0:
            return
        async with redis_errors():
            await self._redis.set(self._jti_key(user_id, jti), "1", ex=_ttl(remaining))
        await self._written(user_id)

    async def revoke_sessions(self, user_id: str, session_ids: list[str], remaining: float) -> None:
        """Revoke sessions, each mark kept as long as their longest refresh token lives."""
        if not session_ids or remaining <= 0:
            return
        async with redis_errors(), self._redis.pipeline(transaction=False) as pipe:
            for session_id in session_ids:
                pipe.set(self._session_key(user_id, session_id), "1", ex=_ttl(remaining))
            await pipe.execute()
        await self._written(user_id)

    async def revoke_issued_before(self, user_id: str, moment: float, remaining: float) -> None:
        """Revoke every token of the user issued at or before `moment` (a Unix time)."""
        async with redis_errors():
            await self._redis.set(self._before_key(user_id), repr(moment), ex=_ttl(remaining))
        await self._written(user_id)

    async def mark_disabled(self, user_id: str, remaining: float) -> None:
        """Refuse every token of the user for `remaining` seconds (the longest a token issued
        until now can live), whatever its `iat`."""
        async with redis_errors():
            await self._redis.set(self._disabled_key(user_id), "1", ex=_ttl(remaining))
        await self._written(user_id)

    async def clear_disabled(self, user_id: str, moment: float, remaining: float) -> None:
        """Lift the disabled mark, leaving every token issued until `moment` revoked."""
        async with redis_errors(), self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._before_key(user_id), repr(moment), ex=_ttl(remaining))
            pipe.delete(self._disabled_key(user_id))
            await pipe.execute()
        await self._written(user_id)

    async def _written(self, user_id: str) -> None:
        # After the write has been answered: a worker that hears this and then asks Redis
        # reads the new marks. Unpublished (Redis failed in between), the caller sees
        # StoreUnavailable as if the write had failed, and a retry publishes again.
        async with redis_errors():
            await self._redis.publish(self.invalidation_channel, user_id)
