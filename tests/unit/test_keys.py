"""Loading the signing keys: the kid of every kind of key, and one clear line for every
key the server must not start with."""

from __future__ import annotations

import os
import secrets
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from joserfc.jwk import JWKRegistry

from api.config.settings import Settings, SettingsError
from api.security.keys import (
    ASYMMETRIC,
    KeySet,
    PrivateKey,
    generate_private_key,
    load_key_set,
    private_pem,
    public_pem,
    thumbprint,
)
from tests.e2e.server import ROOT


def write(folder: Path, name: str, data: bytes) -> str:
    path = folder / name
    path.write_bytes(data)
    return str(path)


def test_thumbprint_is_rfc_7638s_own_example() -> None:
    # RFC 7638, section 3.1: the RSA key of RFC 7517's example and its thumbprint.
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6"
        "tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGj"
        "QR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWh"
        "AI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@pytest.mark.parametrize("algorithm", ASYMMETRIC)
def test_kid_is_the_thumbprint_an_independent_library_computes(
    algorithm: str, tmp_path: Path
) -> None:
    private = generate_private_key(algorithm)
    keys = load_key_set(algorithm, None, write(tmp_path, "k.pem", private_pem(private)), ())
    kty = {"RS256": "RSA", "ES256": "EC", "EdDSA": "OKP"}[algorithm]
    theirs = JWKRegistry.import_key(public_pem(private.public_key()), kty)
    assert keys.signing.kid == theirs.thumbprint()
    (published,) = keys.jwks()["keys"]
    assert published == {
        **theirs.as_dict(private=False),
        "kid": theirs.thumbprint(),
        "alg": algorithm,
        "use": "sig",
    }


def test_hs256_tokens_name_their_secret_without_publishing_it() -> None:
    secret = secrets.token_urlsafe(48)
    keys = load_key_set("HS256", secret, None, ())
    assert keys.jwks() == {"keys": []}
    assert secret not in keys.signing.kid and len(keys.signing.kid) == 43
    assert keys.key_for("anything") is keys.key_for(None) is keys.signing


def test_older_keys_follow_the_signing_key_each_with_its_own_algorithm(tmp_path: Path) -> None:
    signing = generate_private_key("ES256")
    older = [generate_private_key(a) for a in ("RS256", "EdDSA", "ES256")]
    files = [write(tmp_path, f"{n}.pub", public_pem(k.public_key())) for n, k in enumerate(older)]
    # The signing key's own public half listed again is loaded once.
    files.append(write(tmp_path, "self.pub", public_pem(signing.public_key())))
    keys = load_key_set("ES256", None, write(tmp_path, "signing.pem", private_pem(signing)), files)
    assert [(k.algorithm, k.source) for k in keys.keys] == [
        ("ES256", str(tmp_path / "signing.pem")),
        ("RS256", files[0]),
        ("EdDSA", files[1]),
        ("ES256", files[2]),
    ]
    assert [entry["kid"] for entry in keys.jwks()["keys"]] == [k.kid for k in keys.keys]
    assert keys.key_for(keys.keys[2].kid) is keys.keys[2]
    assert keys.key_for("unknown") is None and keys.key_for(None) is None


def _pem(key: PrivateKey | ed448.Ed448PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _rsa(bits: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


# (algorithm, what the private key file holds, what the one line must say)
Writer = Callable[[Path], dict[str, str]]


def _private(data: bytes) -> Writer:
    return lambda folder: {"JWT_PRIVATE_KEY_FILE": write(folder, "signing.pem", data)}


def _older(data: bytes) -> Writer:
    def files(folder: Path) -> dict[str, str]:
        signing = private_pem(generate_private_key("ES256"))
        return {
            "JWT_PRIVATE_KEY_FILE": write(folder, "signing.pem", signing),
            "JWT_PUBLIC_KEY_FILES": write(folder, "older.pem", data),
        }

    return files


REFUSED = [
    pytest.param("RS256", _private(_pem(_rsa(1024))), "RSA key of 1024 bits", id="rsa-1024"),
    pytest.param(
        "RS256",
        _private(_pem(ec.generate_private_key(ec.SECP256R1()))),
        "EC key",
        id="rs256-with-ec",
    ),
    pytest.param(
        "ES256",
        _private(_pem(ec.generate_private_key(ec.SECP384R1()))),
        "secp384r1",
        id="es256-with-p384",
    ),
    pytest.param(
        "ES256",
        _private(_pem(ed25519.Ed25519PrivateKey.generate())),
        "Ed25519 key",
        id="es256-with-ed25519",
    ),
    pytest.param("EdDSA", _private(_pem(_rsa(2048))), "RSA key", id="eddsa-with-rsa"),
    pytest.param(
        "EdDSA", _private(_pem(ed448.Ed448PrivateKey.generate())), "Ed448", id="eddsa-with-ed448"
    ),
    pytest.param(
        "ES256",
        _private(public_pem(ec.generate_private_key(ec.SECP256R1()).public_key())),
        "holds a public key",
        id="public-key-as-signing-key",
    ),
    pytest.param("ES256", _private(b"not a key\n"), "not a PEM private key", id="not-pem"),
    pytest.param(
        "ES256",
        _private(
            ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"passphrase"),
            )
        ),
        "encrypted",
        id="encrypted",
    ),
    pytest.param(
        "ES256",
        lambda folder: {"JWT_PRIVATE_KEY_FILE": str(folder / "missing.pem")},
        "can't read",
        id="missing-file",
    ),
    pytest.param("ES256", lambda folder: {}, "JWT_PRIVATE_KEY_FILE is not set", id="no-key"),
    pytest.param(
        "ES256",
        _older(_pem(ec.generate_private_key(ec.SECP256R1()))),
        "holds a private key",
        id="private-key-among-public-keys",
    ),
    pytest.param(
        "ES256",
        _older(public_pem(_rsa(1024).public_key())),
        "RSA key of 1024 bits",
        id="older-rsa-1024",
    ),
    pytest.param(
        "HS256",
        _private(_pem(ec.generate_private_key(ec.SECP256R1()))),
        "JWT_ALGORITHM is HS256",
        id="hs256-with-a-key-file",
    ),
]


@pytest.mark.parametrize(("algorithm", "files", "says"), REFUSED)
def test_a_wrong_key_is_refused_with_one_line_naming_the_variable(
    algorithm: str, files: Writer, says: str, tmp_path: Path
) -> None:
    env = {"APP_ENV": "test", "JWT_ALGORITHM": algorithm, **files(tmp_path)}
    if algorithm == "HS256":
        env["JWT_SECRET_KEY"] = secrets.token_urlsafe(48)
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(env)
    message = str(refused.value)
    print(f"{algorithm}: {message}")
    assert "\n" not in message and says in message, message
    assert "JWT_PRIVATE_KEY_FILE" in message or "JWT_PUBLIC_KEY_FILES" in message


def test_an_unreadable_key_file_is_refused(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        # root reads every file: a folder that isn't one makes open() fail instead.
        path = str(tmp_path)
    else:
        path = write(tmp_path, "k.pem", private_pem(generate_private_key("ES256")))
        os.chmod(path, 0)
    with pytest.raises(SettingsError, match="JWT_PRIVATE_KEY_FILE: can't read"):
        Settings.from_env({"JWT_ALGORITHM": "ES256", "JWT_PRIVATE_KEY_FILE": path})


def test_asymmetric_modes_need_no_secret_but_still_refuse_a_weak_one(tmp_path: Path) -> None:
    path = write(tmp_path, "k.pem", private_pem(generate_private_key("EdDSA")))
    settings = Settings.from_env({"JWT_ALGORITHM": "EdDSA", "JWT_PRIVATE_KEY_FILE": path})
    assert settings.jwt_secret_key is None
    assert KeySet.from_settings(settings).algorithm == "EdDSA"
    with pytest.raises(SettingsError, match="JWT_SECRET_KEY"):
        Settings.from_env(
            {"JWT_ALGORITHM": "EdDSA", "JWT_PRIVATE_KEY_FILE": path, "JWT_SECRET_KEY": "short"}
        )
    with pytest.raises(SettingsError, match="JWT_SECRET_KEY is not set"):
        Settings.from_env({"JWT_ALGORITHM": "HS256"})


def flask_keys(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # No settings at all in the environment: `keys generate` must not need any.
    clean = {"PATH": os.environ.get("PATH", ""), **env}
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "api", "keys", *args],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("algorithm", ASYMMETRIC)
def test_keys_generate_writes_a_private_key_once_and_prints_its_kid(
    algorithm: str, tmp_path: Path
) -> None:
    path = tmp_path / "keys" / "signing.pem"
    made = flask_keys("generate", "--algorithm", algorithm, "--out", str(path), env={})
    assert made.returncode == 0, made.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    keys = load_key_set(algorithm, None, str(path), ())
    assert made.stdout == keys.signing.kid + "\n"

    before = path.read_bytes()
    again = flask_keys("generate", "--algorithm", algorithm, "--out", str(path), env={})
    print(
        f"{algorithm}: kid {made.stdout.strip()}; again: exit {again.returncode}, "
        f"{again.stderr.strip()!r}"
    )
    assert again.returncode != 0 and "exists" in again.stderr
    assert path.read_bytes() == before

    shown = flask_keys("show", env={"JWT_ALGORITHM": algorithm, "JWT_PRIVATE_KEY_FILE": str(path)})
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split() == ["signs", keys.signing.kid, algorithm, str(path)]


def test_keys_show_lists_the_older_keys_after_the_signing_one(tmp_path: Path) -> None:
    signing = write(tmp_path, "new.pem", private_pem(generate_private_key("ES256")))
    older = write(tmp_path, "old.pub", public_pem(generate_private_key("RS256").public_key()))
    env = {"JWT_ALGORITHM": "ES256", "JWT_PRIVATE_KEY_FILE": signing, "JWT_PUBLIC_KEY_FILES": older}
    shown = flask_keys("show", env=env)
    keys = load_key_set("ES256", None, signing, [older])
    assert [line.split() for line in shown.stdout.splitlines()] == [
        ["signs", keys.keys[0].kid, "ES256", signing],
        ["verifies", keys.keys[1].kid, "RS256", older],
    ]
    broken = flask_keys("show", env={**env, "JWT_PUBLIC_KEY_FILES": signing})
    assert broken.returncode != 0 and "holds a private key" in broken.stderr
