"""Refresh-token rotation with reuse detection.

Every refresh supersedes the presented token. The superseded token may be
exchanged again within REFRESH_REUSE_GRACE (a client on a flaky network that
never saw the answer): it then gets the current link of the chain re-issued,
never a second chain. Any other superseded token means the chain leaked: the
whole session is revoked, every access token issued in it included.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from api.auth.revocation import seconds_until
from api.errors import AccountDisabled, RefreshTokenReused, TokenRevoked
from api.metrics import REVOCATIONS
from api.security.claims import RefreshClaims
from api.security.tokens import IssuedTokens, issue_tokens
from api.settings import Settings
from db.engine import UnitOfWork
from db.models import Session
from db.revocation import RevocationStore


async def refresh(
    uow: UnitOfWork, store: RevocationStore, settings: Settings, claims: RefreshClaims
) -> IssuedTokens:
    """Exchange a verified, unrevoked refresh token for a new pair.

    Raises:
        TokenRevoked: the session was revoked meanwhile, or the user is gone.
        RefreshTokenReused: a superseded token after the grace window (the session is revoked).
        AccountDisabled: the account was disabled.
        StoreUnavailable: Postgres or Redis did not answer.
    """
    user_id, session_id = uuid.UUID(claims.user_id), uuid.UUID(claims.session_id)
    user = await uow.users.get(user_id)
    if user is None:
        raise TokenRevoked()
    if user.disabled:
        raise AccountDisabled()
    issued = datetime.now(UTC)
    new_jti = uuid.uuid4()
    expires_at = issued + timedelta(seconds=settings.refresh_token_ttl)
    rotated = await uow.sessions.rotate_refresh(
        session_id=session_id,
        user_id=user_id,
        presented_jti=uuid.UUID(claims.jti),
        new_jti=new_jti,
        expires_at=expires_at,
    )

    def pair(refresh_jti: uuid.UUID, refresh_expires_at: datetime) -> IssuedTokens:
        return issue_tokens(
            user_id=user_id,
            role=user.role,
            session_id=session_id,
            fresh=False,
            settings=settings,
            refresh_jti=refresh_jti,
            refresh_expires_at=refresh_expires_at,
        )

    if rotated:
        await uow.commit()
        return pair(new_jti, expires_at)
    session = await uow.sessions.get(session_id, user_id)
    if session is None or session.revoked_at is not None:
        raise TokenRevoked()
    if _within_grace(session, claims.jti, settings.refresh_reuse_grace):
        # The current link again, never a second chain.
        return pair(session.current_refresh_jti, session.expires_at)
    await _revoke_reused(uow, store, claims, session)
    raise RefreshTokenReused()


def _within_grace(session: Session, jti: str, grace_seconds: int) -> bool:
    if session.previous_refresh_jti is None or session.rotated_at is None:
        return False
    if str(session.previous_refresh_jti) != jti:
        return False
    return datetime.now(UTC) - session.rotated_at <= timedelta(seconds=grace_seconds)


async def _revoke_reused(
    uow: UnitOfWork, store: RevocationStore, claims: RefreshClaims, session: Session
) -> None:
    await uow.sessions.revoke(session.id, session.user_id)
    await store.revoke_sessions(
        claims.user_id, [claims.session_id], seconds_until(session.expires_at)
    )
    await uow.commit()
    REVOCATIONS.labels("refresh_reuse").inc()
