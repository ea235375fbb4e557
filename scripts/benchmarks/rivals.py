"""The other services scripts/bench measures the API against (issue 21): the seed-style
sync Flask view (seed_style.py, gunicorn) and FastAPI-Users (fastapi_users_app.py,
uvicorn), each with 2 workers like the API, started, readied and stopped here."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import jwt
import redis

from scripts.benchmarks.trees import (
    database_name,
    drop_database,
    recreate_database,
    with_database,
)
from scripts.hypercorn_server import ROOT, Server

SEED_STYLE_THREADS = 8
# Where the seed-style app looks for a revoked jti (seed_style.py reads it from its env).
BLOCKLIST_PREFIX = "seed-style:blocklist:"
FASTAPI_USERS_DB_SUFFIX = "_fastapi_users"
FASTAPI_USERS_VENV = ROOT / ".venv-fastapi-users"
PASSWORD = "bench passphrase 0123456789"


def _plain_env(**extra: str) -> dict[str, str]:
    """The environment of a rival's server: this one's, its code importable from ROOT."""
    return {**os.environ, "PYTHONPATH": str(ROOT), **extra}


def seed_style_command(port: int, workers: int) -> list[str]:
    """gunicorn serving seed_style.py on 127.0.0.1:`port`: `workers` x 8 threads (gthread);
    gunicorn writes no access log unless asked to."""
    return [
        sys.executable, "-m", "gunicorn",
        "--worker-class", "gthread",
        "--workers", str(workers),
        "--threads", str(SEED_STYLE_THREADS),
        "--bind", f"127.0.0.1:{port}",
        "--log-level", "warning",
        "scripts.benchmarks.seed_style:app",
    ]  # fmt: skip


def serve_seed_style(
    port: int, workers: int, *, secret: str, database_url: str, redis_url: str
) -> Server:
    """The seed-style app on `port`, verifying tokens signed with `secret` (HS256) and
    reading the users of `database_url` (the API's database)."""
    env = _plain_env(
        JWT_SECRET_KEY=secret,
        DATABASE_URL=_driver(database_url, "psycopg"),
        REDIS_URL=redis_url,
        BLOCKLIST_PREFIX=BLOCKLIST_PREFIX,
        DB_POOL_SIZE=str(SEED_STYLE_THREADS),
    )
    # gunicorn forks its workers: every child of its master is one.
    return Server(
        env,
        workers,
        port=port,
        command=lambda p: seed_style_command(p, workers),
        worker_mark=None,
    )


def check_seed_style(base: str, token: str, revoked_token: str, email: str, redis_url: str) -> None:
    """Stop unless the seed-style app does its whole job: it answers `token`'s user, and
    refuses `revoked_token` once its jti is on the blocklist."""
    me = httpx.get(f"{base}/me", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    if me.status_code != 200 or me.json().get("email") != email:
        raise SystemExit(f"seed-style GET /me answered {me.status_code}: {me.text[:300]}")
    jti = jwt.decode(revoked_token, options={"verify_signature": False})["jti"]
    client = redis.Redis.from_url(redis_url)
    try:
        client.set(BLOCKLIST_PREFIX + jti, "1", ex=3600)
        refused = httpx.get(
            f"{base}/me", headers={"Authorization": f"Bearer {revoked_token}"}, timeout=30
        )
    finally:
        client.delete(BLOCKLIST_PREFIX + jti)
        client.close()
    if refused.status_code != 401:
        raise SystemExit(
            f"seed-style GET /me answered {refused.status_code} to a blocklisted token"
        )


class FastApiUsers:
    """FastAPI-Users on a database of its own (<db>_fastapi_users), created at construction
    with its table, dropped by `close`; served by uvicorn from .venv-fastapi-users, each
    worker with a pool of `pool_size` connections (the service's DB_POOL_SIZE)."""

    def __init__(self, database_url: str, secret: str, pool_size: int) -> None:
        self.python = os.environ.get(
            "FASTAPI_USERS_PYTHON", str(FASTAPI_USERS_VENV / "bin" / "python")
        )
        if not Path(self.python).is_file():
            raise SystemExit(
                f"no {self.python}: run the bench as scripts/bench, which installs "
                "FastAPI-Users into .venv-fastapi-users"
            )
        name = database_name(database_url) + FASTAPI_USERS_DB_SUFFIX
        self.database_url = _driver(with_database(database_url, name), "asyncpg")
        self.secret = secret
        self.pool_size = pool_size
        self.email = f"bench-{uuid.uuid4().hex}@example.com"
        self.registered = False
        recreate_database(self.database_url)
        created = subprocess.run(
            [self.python, "-m", "scripts.benchmarks.fastapi_users_app"],
            cwd=ROOT,
            env=self._env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if created.returncode != 0:
            raise SystemExit(f"FastAPI-Users' table could not be created:\n{created.stderr}")

    def _env(self) -> dict[str, str]:
        return _plain_env(
            JWT_SECRET_KEY=self.secret,
            FASTAPI_USERS_DATABASE_URL=self.database_url,
            DB_POOL_SIZE=str(self.pool_size),
        )

    def command(self, port: int, workers: int) -> list[str]:
        """uvicorn (uvloop and httptools, as [standard] installs them) on `port`, no
        access log."""
        return [
            self.python, "-m", "uvicorn",
            "scripts.benchmarks.fastapi_users_app:app",
            "--host", "127.0.0.1",
            "--port", str(port),
            "--workers", str(workers),
            "--no-access-log",
            "--log-level", "warning",
        ]  # fmt: skip

    def serve(self, port: int, workers: int) -> Server:
        """uvicorn's master on `port`; its workers are spawned by multiprocessing."""
        return Server(self._env(), workers, port=port, command=lambda p: self.command(p, workers))

    def access_token(self, base: str) -> str:
        """A new access token of the bench's user, registered through its API the first
        time."""
        if not self.registered:
            registered = httpx.post(
                f"{base}/auth/register",
                json={"email": self.email, "password": PASSWORD},
                timeout=30,
            )
            if registered.status_code != 201:
                raise SystemExit(
                    f"FastAPI-Users' register answered {registered.status_code}: "
                    f"{registered.text[:300]}"
                )
            self.registered = True
        response = httpx.post(
            f"{base}/auth/jwt/login",
            data={"username": self.email, "password": PASSWORD},
            timeout=30,
        )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        me = httpx.get(f"{base}/users/me", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        if me.status_code != 200 or me.json().get("email") != self.email:
            raise SystemExit(f"FastAPI-Users' GET /users/me answered {me.status_code}")
        return token

    def close(self) -> None:
        drop_database(self.database_url)


def _driver(url: str, driver: str) -> str:
    """The same Postgres URL naming SQLAlchemy's `driver` (psycopg, asyncpg)."""
    scheme, rest = url.split("://", 1)
    return f"postgresql+{driver}://{rest}" if scheme.startswith("postgres") else url
