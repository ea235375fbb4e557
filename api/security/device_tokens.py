"""Device tokens (OWASP's "device cookie"): proof that a device logged in to an account
before, so its failed logins are counted against a budget of its own.

A token is opaque to the client: a random device id, an expiry, and an HMAC-SHA-256 tag
over the account's user id, the id and the expiry, under a key derived from the server's
secret material. Nothing is stored: the tag binds the token to one account, and a token
presented for another account, tampered with, expired or signed under an older key is
worth nothing (the login then counts against the account-wide budget).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import struct
import time
import uuid
from dataclasses import dataclass

# Derives the tagging key from the server's secret material, which never tags anything itself.
_KEY_LABEL = b"auth-api device token v1"
_ID_BYTES = 16
_EXPIRY = struct.Struct(">Q")
_TAG_BYTES = hashlib.sha256().digest_size
_RAW_BYTES = _ID_BYTES + _EXPIRY.size + _TAG_BYTES
# base64url without padding of the raw bytes.
TOKEN_LENGTH = -(-_RAW_BYTES * 4 // 3)
# What a request may carry in `device_token`: anything longer is refused unread.
MAX_DEVICE_TOKEN_LENGTH = 256
DEVICE_COOKIE = "device_token"
_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class IssuedDeviceToken:
    token: str
    max_age: int


class DeviceTokens:
    """Issues device tokens and recognises the ones this service issued for an account."""

    def __init__(self, secret_material: bytes, lifetime: int) -> None:
        """`secret_material`: bytes only this service holds (KeySet.secret_material)."""
        self._key = hmac.new(secret_material, _KEY_LABEL, hashlib.sha256).digest()
        self._lifetime = lifetime

    def issue(self, user_id: uuid.UUID) -> IssuedDeviceToken:
        """A new device token for a device that just proved the account's password."""
        device_id = secrets.token_bytes(_ID_BYTES)
        expiry = _EXPIRY.pack(int(time.time()) + self._lifetime)
        raw = device_id + expiry + self._tag(user_id, device_id, expiry)
        token = base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
        return IssuedDeviceToken(token, self._lifetime)

    def device_of(self, token: str | None, user_id: uuid.UUID) -> str | None:
        """The device id of `token` when it is an unexpired token issued for `user_id`;
        None for anything else (no token, malformed, another account's, forged, expired)."""
        if token is None or len(token) != TOKEN_LENGTH or not _ALPHABET.fullmatch(token):
            return None
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            return None
        if len(raw) != _RAW_BYTES:
            return None
        device_id = raw[:_ID_BYTES]
        expiry = raw[_ID_BYTES : _ID_BYTES + _EXPIRY.size]
        tag = raw[_ID_BYTES + _EXPIRY.size :]
        if not hmac.compare_digest(tag, self._tag(user_id, device_id, expiry)):
            return None
        if _EXPIRY.unpack(expiry)[0] <= time.time():
            return None
        return device_id.hex()

    def _tag(self, user_id: uuid.UUID, device_id: bytes, expiry: bytes) -> bytes:
        return hmac.new(self._key, user_id.bytes + device_id + expiry, hashlib.sha256).digest()
