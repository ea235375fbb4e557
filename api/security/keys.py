"""The keys tokens are signed and verified with, loaded once per process from the settings.

HS256 signs and verifies with `JWT_SECRET_KEY`. RS256, ES256 and EdDSA sign with the
private key of `JWT_PRIVATE_KEY_FILE` and verify with its public key and the older public
keys of `JWT_PUBLIC_KEY_FILES`, chosen by the token's `kid`: the RFC 7638 thumbprint of
the key. Each key verifies only with its own algorithm, so a token can't pick a weaker
one (nor use a public key as an HMAC secret). Older public keys may be of another
asymmetric algorithm than the signing key: a change of algorithm logs nobody out either.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from api.config.settings_parsers import SettingsError


class KeySettings(Protocol):
    """The settings that name the keys (api.config.settings.Settings has them)."""

    @property
    def jwt_algorithm(self) -> str: ...
    @property
    def jwt_secret_key(self) -> str | None: ...
    @property
    def jwt_private_key_file(self) -> str | None: ...
    @property
    def jwt_public_key_files(self) -> Iterable[str]: ...


SYMMETRIC = "HS256"
ASYMMETRIC = ("RS256", "ES256", "EdDSA")
MIN_RSA_BITS = 2048
PRIVATE_KEY_VARIABLE = "JWT_PRIVATE_KEY_FILE"
PUBLIC_KEYS_VARIABLE = "JWT_PUBLIC_KEY_FILES"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
# The members RFC 7638 hashes, per key type (section 3.2).
_THUMBPRINT_MEMBERS = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
    "oct": ("k", "kty"),
}
_WHAT_EACH_NEEDS = {
    "RS256": f"an RSA key of at least {MIN_RSA_BITS} bits",
    "ES256": "an EC key on the P-256 curve",
    "EdDSA": "an Ed25519 key",
}


@dataclass(frozen=True)
class VerificationKey:
    """A key that verifies tokens of one algorithm, named by its `kid`."""

    kid: str
    algorithm: str
    key: Any = field(repr=False)  # what PyJWT verifies with: a public key, or the secret
    public_jwk: Mapping[str, str] | None = None  # RFC 7517 form; None for a secret
    source: str = ""  # where it was read from: a file, or JWT_SECRET_KEY

    def published(self) -> dict[str, str] | None:
        """This key as a JWKS entry, or None for a secret (never published)."""
        if self.public_jwk is None:
            return None
        return {**self.public_jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig"}


@dataclass(frozen=True)
class KeySet:
    """The signing key and every key still accepted, the signing one first."""

    algorithm: str
    signing_key: Any = field(repr=False)  # a private key, or the HS256 secret
    keys: tuple[VerificationKey, ...]

    @property
    def signing(self) -> VerificationKey:
        """The verification half of the signing key: its kid, algorithm and public key."""
        return self.keys[0]

    @property
    def is_asymmetric(self) -> bool:
        return self.algorithm != SYMMETRIC

    def key_for(self, kid: object) -> VerificationKey | None:
        """The key a token's `kid` names, or None when no configured key has it.

        HS256 has one key and takes nothing from the header: the kid is not consulted.
        """
        if not self.is_asymmetric:
            return self.signing
        if not isinstance(kid, str):
            return None
        return next((key for key in self.keys if key.kid == kid), None)

    def secret_material(self) -> bytes:
        """Bytes only this service holds (the HS256 secret, or the private key), to derive
        other keys from: never published, never used as they are."""
        if not self.is_asymmetric:
            return str(self.signing_key).encode()
        return bytes(
            self.signing_key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The RFC 7517 JWK Set of the public keys, the signing key first."""
        return {"keys": [entry for key in self.keys if (entry := key.published()) is not None]}

    @classmethod
    def from_settings(cls, settings: KeySettings) -> KeySet:
        """Load the keys the settings name.

        Raises:
            SettingsError: a key is missing, unreadable, or of the wrong kind for its algorithm.
        """
        return load_key_set(
            settings.jwt_algorithm,
            settings.jwt_secret_key,
            settings.jwt_private_key_file,
            settings.jwt_public_key_files,
        )


def load_key_set(
    algorithm: str,
    secret: str | None,
    private_key_file: str | None,
    public_key_files: Iterable[str],
) -> KeySet:
    """The key set of `algorithm` from a secret (HS256) or PEM files (the rest).

    Raises:
        SettingsError: a key is missing, unreadable, or of the wrong kind for its algorithm.
    """
    public_key_files = tuple(public_key_files)
    if algorithm == SYMMETRIC:
        if private_key_file or public_key_files:
            variable = PRIVATE_KEY_VARIABLE if private_key_file else PUBLIC_KEYS_VARIABLE
            raise SettingsError(
                f"{variable} is set but JWT_ALGORITHM is HS256, which signs with "
                "JWT_SECRET_KEY; set JWT_ALGORITHM to the key's algorithm (RS256, ES256 or "
                f"EdDSA) or unset {variable}."
            )
        if secret is None:
            raise SettingsError("JWT_SECRET_KEY is not set: JWT_ALGORITHM=HS256 signs with it.")
        jwk = {"kty": "oct", "k": _b64url(secret.encode())}
        signing = VerificationKey(thumbprint(jwk), SYMMETRIC, secret, source="JWT_SECRET_KEY")
        return KeySet(SYMMETRIC, secret, (signing,))
    if not private_key_file:
        raise SettingsError(
            f"{PRIVATE_KEY_VARIABLE} is not set: JWT_ALGORITHM={algorithm} signs with a private "
            f"key; make one with `flask --app api keys generate --algorithm {algorithm} "
            "--out PATH`."
        )
    private = _read_private_key(private_key_file)
    _require_kind(private.public_key(), algorithm, PRIVATE_KEY_VARIABLE, private_key_file)
    keys = [verification_key(private.public_key(), algorithm, private_key_file)]
    for path in public_key_files:
        public = _read_public_key(path)
        older = verification_key(public, _algorithm_of(public, path), path)
        if all(key.kid != older.kid for key in keys):
            keys.append(older)
    return KeySet(algorithm, private, tuple(keys))


def verification_key(public: PublicKey, algorithm: str, source: str = "") -> VerificationKey:
    """The verification key of `public`, named by its RFC 7638 thumbprint."""
    jwk = public_jwk(public)
    return VerificationKey(thumbprint(jwk), algorithm, public, jwk, source)


def public_jwk(public: PublicKey) -> dict[str, str]:
    """The RFC 7517 members of a public key (kty and its parameters, nothing else)."""
    converted: Any
    if isinstance(public, rsa.RSAPublicKey):
        converted = RSAAlgorithm.to_jwk(public, as_dict=True)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        converted = ECAlgorithm.to_jwk(public, as_dict=True)
    else:
        converted = OKPAlgorithm.to_jwk(public, as_dict=True)
    return {name: converted[name] for name in _THUMBPRINT_MEMBERS[converted["kty"]]}


def thumbprint(jwk: Mapping[str, str]) -> str:
    """RFC 7638 JWK thumbprint: base64url SHA-256 of the required members, sorted, no spaces."""
    members = {name: jwk[name] for name in _THUMBPRINT_MEMBERS[jwk["kty"]]}
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def generate_private_key(algorithm: str) -> PrivateKey:
    """A new private key for `algorithm` (RSA 3072 bits, P-256 or Ed25519)."""
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"no key pair for {algorithm!r}; choose one of {', '.join(ASYMMETRIC)}")


def private_pem(key: PrivateKey) -> bytes:
    """`key` as an unencrypted PKCS #8 PEM (the file's mode protects it)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(key: PublicKey) -> bytes:
    """`key` as a SubjectPublicKeyInfo PEM, what JWT_PUBLIC_KEY_FILES reads."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _read(path: str, variable: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise SettingsError(f"{variable}: can't read {path}: {error.strerror or error}.") from None


def _read_private_key(path: str) -> PrivateKey:
    data = _read(path, PRIVATE_KEY_VARIABLE)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise SettingsError(
            f"{PRIVATE_KEY_VARIABLE}: {path} is encrypted; give an unencrypted PEM key "
            "(protected by its file mode, 0600)."
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        if _is_public_key(data):
            raise SettingsError(
                f"{PRIVATE_KEY_VARIABLE}: {path} holds a public key; tokens are signed with "
                f"the private key (public keys of older keys go in {PUBLIC_KEYS_VARIABLE})."
            ) from None
        raise SettingsError(
            f"{PRIVATE_KEY_VARIABLE}: {path} is not a PEM private key; make one with "
            "`flask --app api keys generate --algorithm ALG --out PATH`."
        ) from None
    if not isinstance(key, PrivateKey):
        raise SettingsError(
            f"{PRIVATE_KEY_VARIABLE}: {path} holds a key of another kind "
            f"({type(key).__name__}); use an RSA, P-256 or Ed25519 key."
        )
    return key


def _is_public_key(data: bytes) -> bool:
    try:
        serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        return False
    return True


def _read_public_key(path: str) -> PublicKey:
    data = _read(path, PUBLIC_KEYS_VARIABLE)
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        # A private key here would spread a signing key to wherever public keys go.
        what = "a private key; give its public key" if b"PRIVATE KEY" in data else "no PEM key"
        raise SettingsError(
            f"{PUBLIC_KEYS_VARIABLE}: {path} holds {what} "
            "(`openssl pkey -in PRIVATE.pem -pubout -out PUBLIC.pem`)."
        ) from None
    if not isinstance(key, PublicKey):
        raise SettingsError(
            f"{PUBLIC_KEYS_VARIABLE}: {path} holds a key of another kind "
            f"({type(key).__name__}); use an RSA, P-256 or Ed25519 key."
        )
    return key


def _algorithm_of(public: PublicKey, path: str) -> str:
    """The one algorithm an older public key verifies with, from its kind."""
    for algorithm in ASYMMETRIC:
        if _kind_problem(public, algorithm) is None:
            return algorithm
    raise SettingsError(
        f"{PUBLIC_KEYS_VARIABLE}: {path} is {_describe(public)}; each key must be "
        f"{_WHAT_EACH_NEEDS['RS256']} (RS256), {_WHAT_EACH_NEEDS['ES256']} (ES256) or "
        f"{_WHAT_EACH_NEEDS['EdDSA']} (EdDSA)."
    )


def _require_kind(public: PublicKey, algorithm: str, variable: str, path: str) -> None:
    problem = _kind_problem(public, algorithm)
    if problem is not None:
        raise SettingsError(
            f"{variable}: {path} is {problem}; JWT_ALGORITHM={algorithm} needs "
            f"{_WHAT_EACH_NEEDS[algorithm]}."
        )


def _kind_problem(public: PublicKey, algorithm: str) -> str | None:
    """What is wrong with `public` for `algorithm`, or None when it fits."""
    fits = {
        "RS256": isinstance(public, rsa.RSAPublicKey) and public.key_size >= MIN_RSA_BITS,
        "ES256": isinstance(public, ec.EllipticCurvePublicKey)
        and isinstance(public.curve, ec.SECP256R1),
        "EdDSA": isinstance(public, ed25519.Ed25519PublicKey),
    }
    return None if fits[algorithm] else _describe(public)


def _describe(public: PublicKey) -> str:
    if isinstance(public, rsa.RSAPublicKey):
        return f"an RSA key of {public.key_size} bits"
    if isinstance(public, ec.EllipticCurvePublicKey):
        return f"an EC key on the {public.curve.name} curve"
    return "an Ed25519 key"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
