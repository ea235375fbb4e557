"""Starting the server: secure by default, and a bad setting stops it with one line.

The Procfile's web command is read from the Procfile itself (bound to loopback), so the
tests follow it; scripts/run is started as a new user would start it.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import jwt
import pytest

from api.config.settings import Settings
from tests.e2e.conftest import Users
from tests.e2e.server import ROOT, Server, free_port
from tests.published_keys import FIRST_DEVELOPMENT_DEFAULT

# What a fresh clone has: none of the app's settings. Empty counts as unset for the app
# and for the scripts, and overrides whatever the shell running the tests exported.
FRESH_CLONE = {"APP_ENV": "", "JWT_SECRET_KEY": "", "COOKIE_SECURE": ""}
# Cheap and quiet, so these servers start fast and a run of the suite never hits a limit.
QUICK = {
    "ARGON2_MEMORY_KIB": "1024",
    "ARGON2_TIME_COST": "1",
    "DB_POOL_SIZE": "2",
    "REDIS_POOL_SIZE": "2",
    "RATE_LIMITS_ENABLED": "false",
}
BAD_SETTINGS = [
    pytest.param({"APP_ENV": "prod"}, "APP_ENV", id="APP_ENV=prod"),
    pytest.param({"APP_ENV": "production", "JWT_SECRET_KEY": ""}, "JWT_SECRET_KEY", id="no-key"),
    pytest.param(
        {"APP_ENV": "production", "JWT_SECRET_KEY": FIRST_DEVELOPMENT_DEFAULT},
        "JWT_SECRET_KEY",
        id="published-key",
    ),
    pytest.param({"JWT_SECRET_KEY": "0123456789abcdef"}, "JWT_SECRET_KEY", id="short-key"),
    pytest.param({"COOKIE_SECURE": "false"}, "COOKIE_SECURE", id="insecure-cookies"),
]


def procfile_web_command() -> str:
    """The Procfile's `web:` command, bound to loopback instead of every interface."""
    procfile = (ROOT / "Procfile").read_text()
    match = re.search(r"^web:\s*(.+)$", procfile, re.MULTILINE)
    assert match, procfile
    return match.group(1).replace("0.0.0.0:", "127.0.0.1:")


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # The venv's hypercorn first on PATH, as a platform's buildpack would have it.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    full = {**os.environ, **FRESH_CLONE, "PATH": path, "PORT": str(free_port()), **env}
    return subprocess.run(argv, cwd=ROOT, env=full, capture_output=True, text=True, timeout=120)


def run_procfile(
    env: dict[str, str], command: str | None = None
) -> subprocess.CompletedProcess[str]:
    return run(["bash", "-c", "exec " + (command or procfile_web_command())], env)


def assert_one_line_naming(result: subprocess.CompletedProcess[str], variable: str) -> None:
    lines = result.stderr.splitlines()
    assert result.returncode != 0, result
    assert len(lines) == 1, result.stderr
    assert variable in lines[0], lines[0]


def key() -> str:
    return secrets.token_urlsafe(48)


@pytest.mark.parametrize(("bad", "variable"), BAD_SETTINGS)
def test_procfile_with_a_bad_setting_exits_non_zero_with_one_line_naming_it(
    bad: dict[str, str], variable: str, database_url: str, redis_url: str
) -> None:
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "JWT_SECRET_KEY": key(), **bad}
    result = run_procfile(env)
    print(f"Procfile, {variable}: exit {result.returncode}, stderr {result.stderr!r}")
    assert_one_line_naming(result, variable)
    assert result.returncode == 2
    assert result.stdout == ""


def test_procfile_without_a_key_exits_non_zero_with_one_line_naming_it(
    database_url: str, redis_url: str
) -> None:
    # Exactly what a platform runs when the deploy sets nothing but its own variables.
    result = run_procfile({"DATABASE_URL": database_url, "REDIS_URL": redis_url})
    print(f"Procfile, no settings: exit {result.returncode}, stderr {result.stderr!r}")
    assert_one_line_naming(result, "JWT_SECRET_KEY")


def test_procfile_master_exits_non_zero_whenever_its_workers_die(
    database_url: str, redis_url: str
) -> None:
    # Settings pass in the master, then every worker fails to load the app.
    command = procfile_web_command().replace("api.asgi:app", "api.asgi:no_such_app")
    assert "no_such_app" in command
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "JWT_SECRET_KEY": key()}
    codes = [run_procfile(env, command).returncode for _ in range(3)]
    print(f"exit codes after every worker died: {codes} (non-zero: {sum(c != 0 for c in codes)})")
    assert all(code != 0 for code in codes), codes


@pytest.mark.parametrize(
    ("bad", "variable"),
    [
        pytest.param({"APP_ENV": "prod"}, "APP_ENV", id="APP_ENV=prod"),
        pytest.param({"APP_ENV": "production"}, "JWT_SECRET_KEY", id="production-no-key"),
    ],
)
def test_scripts_run_with_a_bad_setting_exits_non_zero_with_one_line_naming_it(
    bad: dict[str, str], variable: str, tmp_path: Path
) -> None:
    env = {"DEV_KEY_FILE": str(tmp_path / "jwt_secret_key"), **bad}
    started = time.monotonic()
    result = run([str(ROOT / "scripts" / "run")], env)
    print(
        f"scripts/run, {variable}: exit {result.returncode}, stderr {result.stderr!r}, "
        f"{time.monotonic() - started:.1f} s"
    )
    assert_one_line_naming(result, variable)
    assert not (tmp_path / "jwt_secret_key").exists()


def dev_env(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Source scripts/lib/dev_env.sh the way scripts/run does; print what it exported."""
    script = (
        "set -euo pipefail; source scripts/lib/dev_env.sh; "
        'printf "%s %s" "$APP_ENV" "${JWT_SECRET_KEY:-}"'
    )
    return run(["bash", "-c", script], env)


def test_dev_key_is_made_once_private_and_reused_by_concurrent_starts(tmp_path: Path) -> None:
    rounds, starts = 5, 8
    distinct = []
    for number in range(rounds):
        path = tmp_path / f"round-{number}" / ".secrets" / "jwt_secret_key"
        with ThreadPoolExecutor(starts) as pool:
            results = list(pool.map(dev_env, [{"DEV_KEY_FILE": str(path)}] * starts))
        assert all(r.returncode == 0 and r.stderr == "" for r in results), results
        exported = {r.stdout for r in results}
        distinct.append(len(exported))
        app_env, exported_key = exported.pop().split(" ")
        assert app_env == "development"
        assert path.read_text().strip() == exported_key
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert list(path.parent.iterdir()) == [path]  # no temporary file left behind
        settings = Settings.from_env({"APP_ENV": "development", "JWT_SECRET_KEY": exported_key})
        assert settings.jwt_secret_key == exported_key
        again = dev_env({"DEV_KEY_FILE": str(path)})
        assert again.stdout == f"development {exported_key}"
    print(f"distinct keys exported per round of {starts} concurrent starts: {distinct}")
    assert distinct == [1] * rounds


def test_dev_key_is_left_alone_when_a_key_is_set_or_in_production(tmp_path: Path) -> None:
    path = tmp_path / "jwt_secret_key"
    given = key()
    explicit = dev_env({"DEV_KEY_FILE": str(path), "JWT_SECRET_KEY": given})
    production = dev_env({"DEV_KEY_FILE": str(path), "APP_ENV": "production"})
    assert (explicit.stdout, production.stdout) == (f"development {given}", "production ")
    assert not path.exists()


def test_dev_key_file_is_git_ignored() -> None:
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", "-q", ".secrets/jwt_secret_key"], cwd=ROOT
    )
    assert ignored.returncode == 0


@pytest.fixture
def fresh_clone(tmp_path: Path, database_url: str, redis_url: str) -> Iterator[FreshClone]:
    clone = FreshClone(tmp_path / ".secrets" / "jwt_secret_key", database_url, redis_url)
    yield clone
    clone.stop()


class FreshClone:
    """Starts scripts/run as a fresh clone does (no settings); its key file in a temp dir."""

    def __init__(self, key_file: Path, database_url: str, redis_url: str) -> None:
        self.key_file = key_file
        self._env = {
            **FRESH_CLONE,
            **QUICK,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "DEV_KEY_FILE": str(key_file),
        }
        self.server: Server | None = None

    def start(self) -> Server:
        self.stop()
        self.server = Server(self._env, workers=2, script="scripts/run")
        return self.server

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


def forged(role: str = "admin") -> str:
    now = int(time.time())
    claims = {
        "sub": str(uuid.uuid4()),
        "sid": str(uuid.uuid4()),
        "jti": str(uuid.uuid4()),
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "type": "access",
        "fresh": True,
        "role": role,
    }
    return jwt.encode(claims, FIRST_DEVELOPMENT_DEFAULT, algorithm="HS256")


async def test_server_from_a_fresh_clone_refuses_tokens_signed_with_the_published_key(
    fresh_clone: FreshClone, users: Users
) -> None:
    server = fresh_clone.start()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        attempts = 30
        paths = ["/auth/verify", "/me"] * (attempts // 2)
        answers = await asyncio.gather(
            *(http.get(p, headers={"Authorization": f"Bearer {forged()}"}) for p in paths)
        )
        refused = sum(r.status_code == 401 for r in answers)
        print(f"forged with the published key: 401s {refused} of {attempts}")
        assert refused == attempts, [(r.status_code, r.headers.get("X-Auth-Role")) for r in answers]

        # The server signs with the key scripts/run made, and honours its own tokens.
        tokens = await users.login(http, await users.register(http))
        key = fresh_clone.key_file.read_text().strip()
        jwt.decode(tokens["access_token"], key, algorithms=["HS256"])
        own = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert (await http.get("/auth/verify", headers=own)).status_code == 204

    # A developer's restart: scripts/run reuses its key, so the session stays valid.
    server = fresh_clone.start()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        assert (await http.get("/auth/verify", headers=own)).status_code == 204
    assert fresh_clone.key_file.read_text().strip() == key


def _bad_key_files(case: str, folder: Path) -> dict[str, str]:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    from api.security.keys import private_pem, public_pem

    path = folder / "signing.pem"
    if case == "rsa-1024":
        path.write_bytes(
            private_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024))  # noqa: S505
        )
        return {"JWT_ALGORITHM": "RS256", "JWT_PRIVATE_KEY_FILE": str(path)}
    if case == "p-384":
        path.write_bytes(private_pem(ec.generate_private_key(ec.SECP384R1())))
        return {"JWT_ALGORITHM": "ES256", "JWT_PRIVATE_KEY_FILE": str(path)}
    if case == "public-key-signing":
        path.write_bytes(public_pem(ec.generate_private_key(ec.SECP256R1()).public_key()))
        return {"JWT_ALGORITHM": "ES256", "JWT_PRIVATE_KEY_FILE": str(path)}
    return {"JWT_ALGORITHM": "EdDSA", "JWT_PRIVATE_KEY_FILE": str(folder / "missing.pem")}


@pytest.mark.parametrize("case", ["rsa-1024", "p-384", "public-key-signing", "unreadable"])
def test_procfile_with_a_wrong_signing_key_exits_2_with_one_line_naming_it(
    case: str, database_url: str, redis_url: str, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, **_bad_key_files(case, tmp_path)}
    result = run_procfile(env)
    print(f"Procfile, {case}: exit {result.returncode}, stderr {result.stderr!r}")
    assert_one_line_naming(result, "JWT_PRIVATE_KEY_FILE")
    assert result.returncode == 2


def test_scripts_run_with_a_wrong_signing_key_exits_with_one_line_naming_it(
    tmp_path: Path,
) -> None:
    env = {"DEV_KEY_FILE": str(tmp_path / "jwt_secret_key"), **_bad_key_files("p-384", tmp_path)}
    result = run([str(ROOT / "scripts" / "run")], env)
    print(f"scripts/run, P-384 key for ES256: exit {result.returncode}, {result.stderr!r}")
    assert_one_line_naming(result, "JWT_PRIVATE_KEY_FILE")


def test_procfile_signs_with_a_key_pair_and_no_secret(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    """JWT_SECRET_KEY is needed only for HS256: the Procfile starts with a key file alone."""
    from api.security.keys import generate_private_key, private_pem

    path = tmp_path / "signing.pem"
    path.write_bytes(private_pem(generate_private_key("EdDSA")))
    env = {
        **QUICK,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "JWT_ALGORITHM": "EdDSA",
        "JWT_PRIVATE_KEY_FILE": str(path),
    }
    server = Server({**FRESH_CLONE, **env}, workers=1)
    try:
        keys = httpx.get(server.url + "/.well-known/jwks.json", timeout=10).json()["keys"]
    finally:
        server.stop()
    assert [(k["alg"], k["crv"]) for k in keys] == [("EdDSA", "Ed25519")]
