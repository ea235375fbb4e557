"""Ending sessions: one, all but one, or all of a user's, in Postgres and in Redis.

The rules both /auth and /me use. Each method takes the caller's unit of work and
leaves the commit to it. Order matters: the Postgres rows are updated first (locked,
not yet committed, to learn what to revoke), then Redis is written, then the caller
commits. If Redis fails, nothing changes and the client sees 503; if the commit fails
after Redis was written, Redis still refuses the tokens, and refresh consults Redis too.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime

from api.domain.clock import Clock
from api.domain.errors import NotFound
from api.edge.metrics import REVOCATIONS
from api.security.claims import AccessClaims, RefreshClaims
from db.models import DeviceSession
from db.revocation_store import RevocationStore
from db.unit_of_work import UnitOfWork


def seconds_until(moment: datetime, now: datetime) -> float:
    """Seconds from `now` until `moment` (negative once passed)."""
    return (moment - now).total_seconds()


class SessionEnding:
    """Revokes sessions and tokens; built once with the revocation store."""

    def __init__(self, store: RevocationStore, refresh_token_ttl: int, clock: Clock) -> None:
        self._store = store
        self._refresh_token_ttl = refresh_token_ttl
        self._clock = clock

    async def current(self, uow: UnitOfWork, claims: AccessClaims) -> None:
        """Revoke the caller's session: this access token, its refresh token and every other."""
        user_id, session_id = uuid.UUID(claims.user_id), uuid.UUID(claims.session_id)
        now = self._clock()
        expires_at = await uow.sessions.revoke(session_id, user_id, now)
        await self._store.revoke_token(claims.user_id, claims.jti, claims.expires_at - time.time())
        if expires_at is not None:
            await self._store.revoke_sessions(
                claims.user_id, [claims.session_id], seconds_until(expires_at, now)
            )
        REVOCATIONS.labels("logout").inc()

    async def everything(self, uow: UnitOfWork, user_id: str) -> None:
        """Revoke every session of the user and every token issued until now.

        Each revoked session gets its own mark: a refresh that won the row just before
        this ran hands out tokens whose `iat` may come after the "before" mark, and only
        the session mark refuses those.
        """
        await self.all_but(uow, user_id, keep=None)
        # Covers every token issued until now, sessions being created this very moment included.
        await self._store.revoke_issued_before(user_id, time.time(), self._refresh_token_ttl)

    async def all_but(self, uow: UnitOfWork, user_id: str, keep: str | None) -> None:
        """Revoke every active session of the user except `keep`, in Postgres and in Redis.

        The rows are locked by the update, so a refresh of one of them either ran
        before (and its new tokens are covered by the session's mark) or fails after.
        The user's version is bumped first, its row locked till the commit: a login or
        refresh that read the user before then opens or rotates nothing after it (see
        api.auth.service.AuthService.login and api.auth.rotation).
        """
        now = self._clock()
        uid = uuid.UUID(user_id)
        kept = uuid.UUID(keep) if keep is not None else None
        version = await uow.users.bump_version(uid)
        if kept is not None and version is not None:
            await uow.sessions.keep_at_version(kept, uid, version)
        revoked = await uow.sessions.revoke_all(uid, now, keep=kept)
        if revoked:
            longest = max(seconds_until(expires_at, now) for _, expires_at in revoked)
            await self._store.revoke_sessions(user_id, [str(sid) for sid, _ in revoked], longest)

    async def one(self, uow: UnitOfWork, user_id: str, session_id: uuid.UUID) -> None:
        """Revoke one of the user's active sessions (sign a lost phone out).

        Raises:
            NotFound: not an active session of this user.
        """
        now = self._clock()
        expires_at = await uow.sessions.revoke(session_id, uuid.UUID(user_id), now)
        if expires_at is None:
            raise NotFound("No such active session.")
        await self._store.revoke_sessions(
            user_id, [str(session_id)], seconds_until(expires_at, now)
        )
        REVOCATIONS.labels("session").inc()

    async def reused(self, uow: UnitOfWork, claims: RefreshClaims, session: DeviceSession) -> None:
        """Revoke a session whose superseded refresh token came back after the grace window."""
        now = self._clock()
        await uow.sessions.revoke(session.id, session.user_id, now)
        await self._store.revoke_sessions(
            claims.user_id, [claims.session_id], seconds_until(session.expires_at, now)
        )
        REVOCATIONS.labels("refresh_reuse").inc()
