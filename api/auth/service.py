"""Registration and login rules."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from api.errors import AccountDisabled, EmailTaken, InvalidCredentials, ValidationFailed
from api.security.passwords import Passwords, password_problems
from api.security.rate_limits import RateLimits
from api.security.tokens import IssuedTokens, issue_tokens
from api.settings import Settings
from db.emails import NORMALISED_EMAIL_MAX_LENGTH, normalise_email
from db.engine import UnitOfWork
from db.errors import ConflictError
from db.models import User


@dataclass(frozen=True)
class Device:
    """Where a login comes from, as recorded on its session."""

    name: str | None
    ip: str | None
    user_agent: str | None


@dataclass(frozen=True)
class Login:
    session_id: str
    tokens: IssuedTokens


async def register(
    uow: UnitOfWork, passwords: Passwords, settings: Settings, email: str, password: str
) -> User:
    """Create a user with role `user`.

    Raises:
        ValidationFailed: the password breaks a rule.
        EmailTaken: the email exists, once normalised (case, width, compatibility forms).
    """
    problems = password_problems(password, settings.password_min_length)
    if problems:
        raise ValidationFailed([{"field": "password", "message": m} for m in problems])
    normalised = normalise_email(email)
    if len(normalised) > NORMALISED_EMAIL_MAX_LENGTH:
        raise ValidationFailed([{"field": "email", "message": "The email address is too long."}])
    # A cheap look-up first, so a taken email costs no hashing.
    if await uow.users.get_by_email(normalised) is not None:
        raise EmailTaken()
    await uow.release()
    password_hash = await passwords.hash(password)
    try:
        user = await uow.users.add(email, normalised, password_hash)
    except ConflictError:
        raise EmailTaken() from None
    await uow.commit()
    return user


async def login(
    uow: UnitOfWork,
    passwords: Passwords,
    limits: RateLimits,
    settings: Settings,
    email: str,
    password: str,
    device: Device,
) -> Login:
    """Check the credentials and open a new device session.

    Raises:
        RateLimited: too many failed password checks for this account (reserved before hashing).
        HashingBusy: too many password checks are waiting for the hashing threads.
        InvalidCredentials: unknown email or wrong password (same answer, same work).
        AccountDisabled: right password, but the account is disabled.
    """
    normalised = normalise_email(email)
    async with limits.password_check(normalised):
        user = await uow.users.get_by_email(normalised)
        await uow.release()
        if user is None:
            await passwords.verify_dummy(password)
            raise InvalidCredentials()
        if not await passwords.verify(user.password_hash, password):
            raise InvalidCredentials()
    if user.disabled:
        raise AccountDisabled()
    if passwords.needs_rehash(user.password_hash):
        await uow.users.set_password_hash(user, await passwords.hash(password))
    session_id = uuid.uuid4()
    tokens = issue_tokens(
        user_id=user.id, role=user.role, session_id=session_id, fresh=True, settings=settings
    )
    await uow.sessions.add(
        session_id=session_id,
        user_id=user.id,
        refresh_jti=tokens.refresh_jti,
        expires_at=tokens.refresh_expires_at,
        device_name=device.name,
        ip=device.ip,
        user_agent=device.user_agent,
    )
    await uow.commit()
    return Login(session_id=str(session_id), tokens=tokens)
