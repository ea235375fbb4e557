"""SQLAlchemy 2 typed models: User, DeviceSession (one row per device login), AuditEvent,
and a user's second factor (TotpFactor, RecoveryCode), MessageToken (a link sent by mail)
and OutboxMessage (mail waiting to be sent)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    Uuid,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from db.emails import NORMALISED_EMAIL_MAX_LENGTH

# Stable constraint names, so migrations can drop exactly what they created.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: DateTime(timezone=True)}


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        Index("ix_users_created_at_id", "created_at", "id"),
        # Prefix searches (LIKE 'abc%') by normalised address, whatever the collation.
        Index(
            "ix_users_email_normalised_pattern",
            "email_normalised",
            postgresql_ops={"email_normalised": "varchar_pattern_ops"},
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    # As registered (trimmed), for display; never compared.
    email: Mapped[str] = mapped_column(String(254))
    # db.emails.normalise_email(email): unique, and the only lookup path by address.
    email_normalised: Mapped[str] = mapped_column(String(NORMALISED_EMAIL_MAX_LENGTH), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    # One of ROLE_PERMISSIONS' roles: checked at start-up, not by a constraint, so an
    # operator can add roles without a migration.
    role: Mapped[str] = mapped_column(String(16), server_default="user")
    disabled: Mapped[bool] = mapped_column(server_default=false())
    # Bumped (users.bump_version) by every change that ends the user's sessions or changes
    # what the user may do: a login or refresh that read an older one lost the race to it.
    version: Mapped[int] = mapped_column(server_default="0")
    # When the address was proven (a verification, reset or email-change link); None: never.
    email_verified_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class DeviceSession(Base):
    """A device login: it owns one refresh-token chain."""

    __tablename__ = "sessions"
    __table_args__ = (
        Index("ix_sessions_user_id_created_at", "user_id", "created_at"),
        # When the session ended (LEAST skips NULL: revoked_at, else expires_at): the purge's path.
        Index("ix_sessions_ended_at", func.least(text("expires_at"), text("revoked_at"))),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    device_name: Mapped[str | None] = mapped_column(String(100))
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    current_refresh_jti: Mapped[uuid.UUID] = mapped_column(Uuid)
    # The user's version when the session was opened (or last kept by a password change).
    user_version: Mapped[int] = mapped_column(server_default="0")
    previous_refresh_jti: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_used_at: Mapped[datetime] = mapped_column(server_default=func.now())
    rotated_at: Mapped[datetime | None] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    # How the login that opened it authenticated (RFC 8176 values, space-separated): every
    # access token of the session carries it as `amr`, refreshed ones included.
    amr: Mapped[str] = mapped_column(String(32), server_default="pwd")


class AuditEvent(Base):
    """A security event, written in the transaction of the change it records; never updated.

    No foreign keys: the trail of a deleted account stays. Never a token, password or hash.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        # Newest first, and the purge's path.
        Index("ix_audit_events_occurred_at_id", "occurred_at", "id"),
        Index("ix_audit_events_user_id_occurred_at_id", "user_id", "occurred_at", "id"),
    )

    # Sequence order breaks ties between events of the same moment (one transaction's).
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    occurred_at: Mapped[datetime] = mapped_column()
    type: Mapped[str] = mapped_column(String(40))
    # Whose account the event is about; None for a failed login of an unknown address.
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # Who did it, when not the user themselves (an administrator).
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    session_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))


class TotpFactor(Base):
    """A user's TOTP authenticator: the secret encrypted (MFA_ENCRYPTION_KEY), never in clear.

    Unconfirmed until the user proves their app shows the same codes; only a confirmed one
    changes what login asks for.
    """

    __tablename__ = "mfa_totp"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    secret_encrypted: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    confirmed_at: Mapped[datetime | None] = mapped_column()


class RecoveryCode(Base):
    """One single-use recovery code of a user, stored only as its SHA-256."""

    __tablename__ = "mfa_recovery_codes"
    __table_args__ = (Index("ix_mfa_recovery_codes_user_id_code_hash", "user_id", "code_hash"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    used_at: Mapped[datetime | None] = mapped_column()


class MessageToken(Base):
    """A token sent in a message (verification, reset, email change): stored only as its hash,
    bound to its purpose and the address it was sent to, used at most once."""

    __tablename__ = "message_tokens"
    __table_args__ = (
        Index("ix_message_tokens_user_id_purpose", "user_id", "purpose"),
        Index("ix_message_tokens_expires_at", "expires_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(16))
    # SHA-256 of the token: a leaked table holds nothing that can be presented.
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    # The normalised address the message went to; the token is void once it is not the
    # user's (verification, reset) or is taken (email change).
    address: Mapped[str] = mapped_column(String(NORMALISED_EMAIL_MAX_LENGTH))
    # Email change: the new address as typed, shown from then on.
    new_email: Mapped[str | None] = mapped_column(String(254))
    # Reset: SHA-256 of the password hash when issued, so any password change voids it.
    password_digest: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()
    # Used, or superseded by a newer token of the same purpose.
    used_at: Mapped[datetime | None] = mapped_column()


class OutboxMessage(Base):
    """A message written in the transaction of the change that causes it, until delivered.

    `message_id` is its idempotency key: sent as the Message-ID header, so a delivery
    repeated after a crash is recognisably the same message.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        # The sender's path: what is still due, oldest first.
        Index(
            "ix_outbox_due",
            "next_attempt_at",
            "id",
            postgresql_where=text("sent_at IS NULL AND failed_at IS NULL"),
        ),
        Index("ix_outbox_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(200), unique=True)
    # Whose account the message is about; no foreign key, like the audit trail's.
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    kind: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    # Erased once delivered over SMTP: the bodies carry the link's token.
    text_body: Mapped[str | None] = mapped_column(Text)
    html_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column()
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column()
    sent_at: Mapped[datetime | None] = mapped_column()
    failed_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(String(200))
