"""Tokens sent in messages: 256 random bits, stored only as their SHA-256, and their links."""

from __future__ import annotations

import hashlib
import re
import secrets
from enum import StrEnum
from urllib.parse import urlencode

# secrets.token_urlsafe(32): 43 characters of base64url.
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")


class Purpose(StrEnum):
    """What a token is for; a token of one purpose is refused by every other route."""

    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"  # noqa: S105 (a purpose, not a password)
    CHANGE_EMAIL = "change_email"


# The action named in a link, for the client page that opens it.
ACTIONS = {
    Purpose.VERIFY_EMAIL: "verify-email",
    Purpose.RESET_PASSWORD: "reset-password",
    Purpose.CHANGE_EMAIL: "confirm-email-change",
}


def new_token() -> tuple[str, bytes]:
    """A fresh token and the hash that is stored in its place."""
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> bytes:
    """What the database holds for `token`: its SHA-256 (256 random bits need no salt)."""
    return hashlib.sha256(token.encode()).digest()


def well_formed(token: str) -> bool:
    """Whether `token` could be one of ours at all (refused without a query otherwise)."""
    return _TOKEN_SHAPE.fullmatch(token) is not None


def password_digest(password_hash: str) -> bytes:
    """What a reset token remembers of the password it replaces: any change voids it."""
    return hashlib.sha256(password_hash.encode()).digest()


def link(base: str | None, purpose: Purpose, token: str) -> str | None:
    """The link a message carries: `base` with the action and token in its fragment (never
    sent to a web server), or None when no PUBLIC_LINK_BASE is configured."""
    if base is None:
        return None
    return f"{base}#{urlencode({'action': ACTIONS[purpose], 'token': token})}"
