"""Ending sessions: one, all but one, or all of a user's, in Postgres and in Redis.

Order matters: the Postgres rows are updated first (not yet committed, to learn
what to revoke), then Redis is written, then the transaction commits. If Redis
fails, nothing changes and the client sees 503; if the commit fails after Redis
was written, Redis still refuses the tokens, and refresh consults Redis too.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

from api.errors import NotFound
from api.metrics import REVOCATIONS
from api.security.claims import AccessClaims
from api.settings import Settings
from db.engine import UnitOfWork
from db.models import Session
from db.revocation import RevocationStore


def seconds_until(moment: datetime) -> float:
    """Seconds from now until `moment` (negative once passed)."""
    return (moment - datetime.now(UTC)).total_seconds()


async def logout(uow: UnitOfWork, store: RevocationStore, claims: AccessClaims) -> None:
    """Revoke the caller's session: this access token, its refresh token and every other."""
    user_id, session_id = uuid.UUID(claims.user_id), uuid.UUID(claims.session_id)
    expires_at = await uow.sessions.revoke(session_id, user_id)
    await store.revoke_token(claims.user_id, claims.jti, claims.expires_at - time.time())
    if expires_at is not None:
        await store.revoke_sessions(claims.user_id, [claims.session_id], seconds_until(expires_at))
    await uow.commit()
    REVOCATIONS.labels("logout").inc()


async def logout_all(
    uow: UnitOfWork, store: RevocationStore, settings: Settings, user_id: str
) -> None:
    """Revoke every session of the user, on every device, at once."""
    await revoke_everything(uow, store, settings, user_id)
    await uow.commit()
    REVOCATIONS.labels("logout_all").inc()


async def revoke_everything(
    uow: UnitOfWork, store: RevocationStore, settings: Settings, user_id: str
) -> None:
    """Revoke every session of the user and every token issued until now; the caller commits.

    Each revoked session gets its own mark: a refresh that won the row just before
    this ran hands out tokens whose `iat` may come after the "before" mark, and only
    the session mark refuses those.
    """
    await revoke_other_sessions(uow, store, user_id, keep=None)
    # Covers every token issued until now, sessions being created this very moment included.
    await store.revoke_issued_before(user_id, time.time(), settings.refresh_token_ttl)


async def revoke_other_sessions(
    uow: UnitOfWork, store: RevocationStore, user_id: str, keep: str | None
) -> None:
    """Revoke every active session of the user except `keep`, in Postgres and in Redis.

    The rows are locked by the update, so a refresh of one of them either ran
    before (and its new tokens are covered by the session's mark) or fails after.
    """
    revoked = await uow.sessions.revoke_all(
        uuid.UUID(user_id), keep=uuid.UUID(keep) if keep is not None else None
    )
    if revoked:
        longest = max(seconds_until(expires_at) for _, expires_at in revoked)
        await store.revoke_sessions(user_id, [str(sid) for sid, _ in revoked], longest)


async def revoke_session(
    uow: UnitOfWork, store: RevocationStore, user_id: str, session_id: str
) -> None:
    """Revoke one of the user's active sessions (sign a lost phone out).

    Raises:
        NotFound: not an active session of this user (or not a session id at all).
    """
    try:
        sid = uuid.UUID(session_id)
    except ValueError:
        raise NotFound("No such active session.") from None
    expires_at = await uow.sessions.revoke(sid, uuid.UUID(user_id))
    if expires_at is None:
        raise NotFound("No such active session.")
    await store.revoke_sessions(user_id, [str(sid)], seconds_until(expires_at))
    await uow.commit()
    REVOCATIONS.labels("session").inc()


async def active_sessions(uow: UnitOfWork, user_id: str) -> list[Session]:
    """The user's active sessions, newest first."""
    return await uow.sessions.list_active(uuid.UUID(user_id))
