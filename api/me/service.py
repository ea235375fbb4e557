"""Rules of the signed-in user's own account."""

from __future__ import annotations

import uuid

from api.auth.revocation import revoke_everything, revoke_other_sessions
from api.errors import InvalidCredentials, TokenRevoked, ValidationFailed
from api.metrics import REVOCATIONS
from api.security.claims import AccessClaims
from api.security.passwords import Passwords, password_problems
from api.security.rate_limits import RateLimits
from api.settings import Settings
from db.engine import UnitOfWork
from db.models import User
from db.revocation import RevocationStore


async def get_me(uow: UnitOfWork, claims: AccessClaims) -> User:
    """The user the token belongs to.

    Raises:
        TokenRevoked: the user no longer exists (deleted after the token was issued).
    """
    user = await uow.users.get(uuid.UUID(claims.user_id))
    if user is None:
        raise TokenRevoked()
    return user


async def _check_password(
    uow: UnitOfWork, passwords: Passwords, limits: RateLimits, claims: AccessClaims, password: str
) -> User:
    user = await get_me(uow, claims)
    await uow.release()
    # The same per-account limit as login: a token must not make a better password oracle.
    async with limits.password_check(user.email):
        if not await passwords.verify(user.password_hash, password):
            raise InvalidCredentials("The password is incorrect.")
    return user


async def change_password(
    uow: UnitOfWork,
    store: RevocationStore,
    passwords: Passwords,
    limits: RateLimits,
    settings: Settings,
    claims: AccessClaims,
    current_password: str,
    new_password: str,
) -> None:
    """Set a new password and sign out every other session; the current one stays.

    Raises:
        InvalidCredentials: `current_password` is wrong.
        RateLimited: too many failed password checks for this account.
        ValidationFailed: the new password breaks a rule.
    """
    problems = password_problems(new_password, settings.password_min_length)
    if problems:
        raise ValidationFailed([{"field": "new_password", "message": m} for m in problems])
    user = await _check_password(uow, passwords, limits, claims, current_password)
    await uow.users.set_password_hash(user, await passwords.hash(new_password))
    await revoke_other_sessions(uow, store, claims.user_id, keep=claims.session_id)
    await uow.commit()
    REVOCATIONS.labels("other_sessions").inc()


async def delete_account(
    uow: UnitOfWork,
    store: RevocationStore,
    passwords: Passwords,
    limits: RateLimits,
    settings: Settings,
    claims: AccessClaims,
    password: str,
) -> None:
    """Delete the account and revoke every token it ever had.

    Raises:
        InvalidCredentials: `password` is wrong.
        RateLimited: too many failed password checks for this account.
    """
    user = await _check_password(uow, passwords, limits, claims, password)
    # Sessions are revoked (rows locked, Redis marks written) before the rows go
    # with the user, so a refresh running at this moment can't outlive the account.
    await revoke_everything(uow, store, settings, claims.user_id)
    await uow.users.delete(user)
    await uow.commit()
    REVOCATIONS.labels("account_deleted").inc()
