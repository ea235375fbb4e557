"""SecretBox: TOTP secrets encrypted at rest with MFA_ENCRYPTION_KEY (Fernet, rotatable)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from api.config.settings import Settings
from api.domain.errors import MfaKeyMissing

logger = logging.getLogger(__name__)

# Derives the development key from the signing key's material: never the material itself.
_DEVELOPMENT_KEY_LABEL = b"auth-api mfa: development secret key v1"


class SecretBox:
    """Encrypts with the first key, decrypts with any (MultiFernet): add a new key in front,
    re-encrypt (`flask --app api mfa reencrypt`), then drop the old one."""

    def __init__(self, keys: tuple[str, ...] | None) -> None:
        self._box = MultiFernet([Fernet(key) for key in keys]) if keys else None
        self._first = Fernet(keys[0]) if keys else None

    @classmethod
    def from_settings(cls, settings: Settings, secret_material: bytes) -> SecretBox:
        """The configured keys; in development and test without one, a key derived from
        the signing key's material (production gets none: enrolment is refused)."""
        if settings.mfa_encryption_key:
            return cls(settings.mfa_encryption_key)
        if settings.is_production:
            logger.warning(
                "MFA_ENCRYPTION_KEY is not set: second-factor enrolment is refused until it is"
            )
            return cls(None)
        derived = hmac.new(secret_material, _DEVELOPMENT_KEY_LABEL, hashlib.sha256).digest()
        return cls((base64.urlsafe_b64encode(derived).decode(),))

    @property
    def available(self) -> bool:
        """Whether secrets can be stored (a key is configured or derived)."""
        return self._box is not None

    def encrypt(self, secret: str) -> str:
        """`secret` encrypted under the first key.

        Raises:
            MfaKeyMissing: no key (production without MFA_ENCRYPTION_KEY).
        """
        if self._box is None:
            raise MfaKeyMissing()
        return self._box.encrypt(secret.encode()).decode()

    def decrypt(self, stored: str) -> str:
        """The secret `stored` holds.

        Raises:
            MfaKeyMissing: no key, or none of the keys opens it (a key was dropped too soon).
        """
        if self._box is None:
            raise MfaKeyMissing()
        try:
            return self._box.decrypt(stored.encode()).decode()
        except InvalidToken:
            raise MfaKeyMissing(
                "A stored second factor can't be decrypted with MFA_ENCRYPTION_KEY; an "
                "operator must put back the key it was encrypted with."
            ) from None

    def under_first_key(self, stored: str) -> str | None:
        """`stored` re-encrypted under the first key, or None if it already is."""
        if self._box is None or self._first is None:
            raise MfaKeyMissing()
        try:
            self._first.decrypt(stored.encode())
            return None
        except InvalidToken:
            return self._box.rotate(stored.encode()).decode()
