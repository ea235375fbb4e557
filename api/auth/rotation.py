"""Refresh-token rotation with reuse detection.

Every refresh supersedes the presented token. The superseded token may be
exchanged again within REFRESH_REUSE_GRACE (a client on a flaky network that
never saw the answer): it then gets the current link of the chain re-issued,
never a second chain. Any other superseded token means the chain leaked: the
whole session is revoked, every access token issued in it included.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from api.config.settings import Settings
from api.domain.audit import AuditTrail, EventType
from api.domain.clock import Clock
from api.domain.errors import AccountDisabled, RefreshTokenReused, TokenRevoked
from api.domain.session_ending import SessionEnding
from api.security.claims import RefreshClaims
from api.security.tokens import IssuedTokens, TokenIssuer
from db.models import DeviceSession
from db.unit_of_work import UnitOfWork


class Rotation:
    """The refresh rules, built once with the session-ending rules they fall back on."""

    def __init__(
        self,
        ending: SessionEnding,
        trail: AuditTrail,
        issuer: TokenIssuer,
        settings: Settings,
        clock: Clock,
    ) -> None:
        self._ending = ending
        self._issuer = issuer
        self._trail = trail
        self._settings = settings
        self._grace = timedelta(seconds=settings.refresh_reuse_grace)
        self._clock = clock

    async def exchange(self, uow: UnitOfWork, claims: RefreshClaims) -> IssuedTokens:
        """Exchange a verified, unrevoked refresh token for a new pair; commits `uow`.

        Raises:
            TokenRevoked: the session was revoked meanwhile, the user is gone, or the user
                changed (version bumped) since the session was opened.
            RefreshTokenReused: a superseded token after the grace window (the session is revoked).
            AccountDisabled: the account was disabled.
            StoreUnavailable: Postgres or Redis did not answer.
        """
        user_id, session_id = uuid.UUID(claims.user_id), uuid.UUID(claims.session_id)
        # Share-locked till the commit: a change to the user (demotion, disable, password
        # change, sign-out everywhere, deletion) waits for this refresh, or this refresh
        # for it and then reads its result; the role read here is the one signed.
        user = await uow.users.share_lock(user_id)
        if user is None:
            raise TokenRevoked()
        if user.disabled:
            raise AccountDisabled()
        new_jti = uuid.uuid4()
        now = self._clock()
        tokens = self._pair(user_id, user.role, session_id, new_jti, None, claims)
        event = self._trail.event(EventType.TOKEN_REFRESHED, user_id=user_id, session_id=session_id)
        rotated = await uow.sessions.rotate_refresh(
            session_id=session_id,
            user_id=user_id,
            presented_jti=uuid.UUID(claims.jti),
            user_version=user.version,
            new_jti=new_jti,
            expires_at=tokens.refresh_expires_at,
            now=now,
            event=event,
        )
        if rotated:
            await uow.commit()
            return tokens
        session = await uow.sessions.get(session_id, user_id)
        if session is None or session.revoked_at is not None:
            raise TokenRevoked()
        if session.user_version != user.version:
            # Opened before a change to its user: nothing of it outlives that change.
            raise TokenRevoked()
        if self._within_grace(session, claims.jti, now):
            # The current link again, never a second chain.
            event = self._trail.event(
                EventType.TOKEN_REFRESHED,
                user_id=user_id,
                session_id=session_id,
                details={"within_grace": True},
            )
            await uow.record(event)
            await uow.commit()
            return self._pair(
                user_id,
                user.role,
                session_id,
                session.current_refresh_jti,
                session.expires_at,
                claims,
            )
        await self._ending.reused(uow, claims, session)
        event = self._trail.event(EventType.REFRESH_REUSED, user_id=user_id, session_id=session_id)
        await uow.record(event)
        await uow.commit()
        raise RefreshTokenReused()

    def _pair(
        self,
        user_id: uuid.UUID,
        role: str,
        session_id: uuid.UUID,
        refresh_jti: uuid.UUID,
        refresh_expires_at: datetime | None,
        presented: RefreshClaims,
    ) -> IssuedTokens:
        return self._issuer.issue(
            user_id=user_id,
            role=role,
            session_id=session_id,
            fresh=False,
            refresh_jti=refresh_jti,
            refresh_expires_at=refresh_expires_at,
            remember=presented.remember,
            # The session's own: its refresh tokens carry what its row records.
            amr=presented.amr,
        )

    def _within_grace(self, session: DeviceSession, jti: str, now: datetime) -> bool:
        if session.previous_refresh_jti is None or session.rotated_at is None:
            return False
        if str(session.previous_refresh_jti) != jti:
            return False
        return now - session.rotated_at <= self._grace
