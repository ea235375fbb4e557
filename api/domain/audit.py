"""The audit trail: what a security event records, and the log line that follows it.

Services build an event here and write it with the change it records, in the same
transaction (db.audit); once committed, the event is logged: one line per event, a
JSON object when LOG_FORMAT=json. An event never holds a token, a password, a hash of
one, or the address of an unknown account: a failed login for an address no account
has is recorded with a keyed hash of it, so repeated guesses at one address can be told
apart without the trail holding the address.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import logging
import uuid
from typing import Any

from api.domain.clock import Clock
from api.edge.request_context import current_origin
from db.audit import NewEvent

# The name operators filter the trail by, kept from before the layout moved this module.
logger = logging.getLogger("api.audit")

# The label that derives the address-hashing key from JWT_SECRET_KEY: the signing key
# itself never hashes anything, and a hash can't be turned into a token.
_EMAIL_KEY_LABEL = b"auth-api audit: unknown email v1"


class EventType(enum.StrEnum):
    USER_REGISTERED = "user.registered"
    LOGIN_SUCCEEDED = "login.succeeded"
    LOGIN_FAILED = "login.failed"
    TOKEN_REFRESHED = "token.refreshed"  # noqa: S105 (an event name)
    REFRESH_REUSED = "refresh.reused"
    SESSION_LOGOUT = "session.logout"
    SESSIONS_LOGOUT_ALL = "sessions.logout_all"
    SESSION_REVOKED = "session.revoked"
    PASSWORD_CHANGED = "password.changed"  # noqa: S105 (an event name)
    ACCOUNT_DELETED = "account.deleted"
    ADMIN_USER_CREATED = "admin.user_created"
    ADMIN_USER_UPDATED = "admin.user_updated"
    ADMIN_SESSIONS_REVOKED = "admin.sessions_revoked"
    MFA_ENROLLED = "mfa.enrolled"
    MFA_DISABLED = "mfa.disabled"
    MFA_SUCCEEDED = "mfa.succeeded"
    MFA_FAILED = "mfa.failed"
    MFA_RECOVERY_CODE_USED = "mfa.recovery_code_used"
    MFA_RECOVERY_CODES_REPLACED = "mfa.recovery_codes_replaced"
    ADMIN_MFA_RESET = "admin.mfa_reset"
    EMAIL_VERIFICATION_SENT = "email.verification_sent"
    EMAIL_VERIFIED = "email.verified"
    PASSWORD_RESET_REQUESTED = "password.reset_requested"  # noqa: S105 (an event name)
    PASSWORD_RESET = "password.reset"  # noqa: S105 (an event name)
    EMAIL_CHANGE_REQUESTED = "email.change_requested"
    EMAIL_CHANGED = "email.changed"
    MAIL_FAILED = "mail.failed"


Id = uuid.UUID | str | None


def _uuid(value: Id) -> uuid.UUID | None:
    return uuid.UUID(value) if isinstance(value, str) else value


class AuditTrail:
    """Builds events stamped with the app's clock and the request's origin; logs them."""

    def __init__(self, secret_material: bytes, clock: Clock) -> None:
        """`secret_material`: bytes only this service holds (KeySet.secret_material)."""
        self._email_key = hmac.new(secret_material, _EMAIL_KEY_LABEL, hashlib.sha256).digest()
        self._clock = clock

    def event(
        self,
        type: EventType,
        *,
        user_id: Id = None,
        actor_id: Id = None,
        session_id: Id = None,
        details: dict[str, Any] | None = None,
    ) -> NewEvent:
        """An event of the current request (its client address and user agent), now."""
        origin = current_origin()
        return NewEvent(
            type=type.value,
            occurred_at=self._clock(),
            user_id=_uuid(user_id),
            actor_id=_uuid(actor_id),
            session_id=_uuid(session_id),
            ip=origin.ip if origin is not None else None,
            user_agent=origin.user_agent if origin is not None else None,
            details=details or {},
        )

    def email_hash(self, normalised_email: str) -> str:
        """A keyed hash of an address no account has (HMAC-SHA-256, 128 bits shown)."""
        digest = hmac.new(self._email_key, normalised_email.encode(), hashlib.sha256)
        return digest.hexdigest()[:32]

    def logged(self, *events: NewEvent) -> None:
        """Log events whose transaction committed: one line each."""
        origin = current_origin()
        request_id = origin.request_id if origin is not None else None
        for event in events:
            facts = {
                "type": event.type,
                "occurred_at": event.occurred_at.isoformat(),
                "user_id": _text(event.user_id),
                "actor_id": _text(event.actor_id),
                "session_id": _text(event.session_id),
                "ip": event.ip,
                "user_agent": event.user_agent,
                "details": event.details,
                "request_id": request_id,
            }
            logger.info(
                "%s user=%s session=%s request=%s",
                event.type,
                facts["user_id"],
                facts["session_id"],
                request_id,
                extra={"event": facts},
            )


def _text(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)
