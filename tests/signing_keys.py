"""Key pairs and token forgeries for the tests of asymmetric signing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from api.security.keys import PrivateKey, generate_private_key, private_pem, public_pem

# JWT_ALGORITHM values with a key pair; the first RS256 key size the server accepts
# (2048) keeps the tests quick.
ALGORITHMS = ("RS256", "ES256", "EdDSA")


def new_key(algorithm: str) -> PrivateKey:
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return generate_private_key(algorithm)


def write_private(folder: Path, name: str, key: PrivateKey) -> str:
    path = folder / name
    path.write_bytes(private_pem(key))
    path.chmod(0o600)
    return str(path)


def write_public(folder: Path, name: str, key: PrivateKey) -> str:
    path = folder / name
    path.write_bytes(public_pem(key.public_key()))
    return str(path)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def header_of(token: str) -> dict[str, Any]:
    header: dict[str, Any] = jwt.get_unverified_header(token)
    return header


def claims_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def hmac_signed(claims: dict[str, Any], secret: bytes, header: dict[str, Any]) -> str:
    """An HS256 token signed by hand: PyJWT refuses a PEM key as an HMAC secret."""
    head = b64(json.dumps({"typ": "JWT", **header, "alg": "HS256"}).encode())
    body = b64(json.dumps(claims).encode())
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(mac)}"


def signed_by_hand(claims: dict[str, Any], key: Any, algorithm: str, header: dict[str, Any]) -> str:
    """A token signed with `key` under any header (PyJWT's encode checks the header)."""
    signer = jwt.get_algorithm_by_name(algorithm)
    head = b64(json.dumps({"typ": "JWT", **header, "alg": algorithm}).encode())
    body = b64(json.dumps(claims).encode())
    signature = signer.sign(f"{head}.{body}".encode(), signer.prepare_key(key))
    return f"{head}.{body}.{b64(signature)}"
