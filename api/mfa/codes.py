"""TOTP (RFC 6238: SHA-1, 6 digits, 30 s) and recovery codes: making and checking them."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import pyotp

STEP = 30
DIGITS = 6
# Codes of one step before and after now are accepted: phones' clocks drift.
DRIFT_STEPS = 1
RECOVERY_CODES = 10
# 16 base32 characters: 80 random bits, so a plain SHA-256 of one can't be searched.
_RECOVERY_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_RECOVERY_LENGTH = 16
_RECOVERY_GROUP = 4


@dataclass(frozen=True)
class Match:
    """A code that matched: the time step it belongs to, and how long it stays acceptable."""

    counter: int
    acceptable_for: float


def new_secret() -> str:
    """A random 160-bit TOTP secret in base32 (RFC 4226's recommended length)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    """The otpauth:// URI authenticator apps read (from a QR code) for `secret`."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP).provisioning_uri(
        name=account, issuer_name=issuer
    )


def match(secret: str, code: str, now: float) -> Match | None:
    """The step `code` belongs to, within DRIFT_STEPS of `now`, or None.

    Every candidate is computed and compared in constant time, whichever matches.
    """
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP)
    current = int(now) // STEP
    found: int | None = None
    for counter in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(counter), code) and found is None:
            found = counter
    if found is None:
        return None
    # The last moment any verifier accepts this step: DRIFT_STEPS steps after it ends.
    until = (found + 1 + DRIFT_STEPS) * STEP
    return Match(found, until - now)


def normalised_code(text: str) -> str:
    """A one-time code as typed, without spaces ("123 456" is 123456)."""
    return "".join(text.split())


def new_recovery_codes() -> list[str]:
    """RECOVERY_CODES fresh codes, as shown to the user: xxxx-xxxx-xxxx-xxxx."""
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH))
        groups = [raw[i : i + _RECOVERY_GROUP] for i in range(0, _RECOVERY_LENGTH, _RECOVERY_GROUP)]
        codes.append("-".join(groups))
    return codes


def recovery_code_hash(code: str) -> str:
    """The stored form of a recovery code: SHA-256 of it without case, spaces or dashes."""
    canonical = "".join(c for c in code.lower() if c not in "- \t")
    return hashlib.sha256(canonical.encode()).hexdigest()
