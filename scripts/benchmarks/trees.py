"""The source trees a benchmark serves: this checkout, and for an A/B run another checkout
of the repository (`--baseline-tree`), each with its own database and its own code."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from scripts.hypercorn_server import ROOT, SERVICE_APP, Server

BASELINE_DB_SUFFIX = "_baseline"


@dataclass
class Tree:
    """One checkout served by the benchmark, on its own port and database."""

    name: str  # "current" or "baseline"
    root: Path
    port: int
    database_url: str
    app_name: str  # DB_APPLICATION_NAME, to count this tree's connections
    email: str = field(default_factory=lambda: f"bench-{uuid.uuid4().hex}@example.com")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def label(self) -> str:
        return f"{self.name} {commit_of(self.root)}"

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of this tree's servers and commands."""
        return {
            **os.environ,
            # The venv has this repository installed editable; the tree's own folder must
            # come first so its `api` and `db` are the ones imported.
            "PYTHONPATH": str(self.root),
            "DATABASE_URL": self.database_url,
            "LOG_LEVEL": "WARNING",
            # As in _env: a line per request would tilt the comparison with a tree without one.
            "ACCESS_LOG": "false",
            "DB_APPLICATION_NAME": self.app_name,
            "RATE_LIMITS_ENABLED": "false",
            **extra,
        }

    def serve(
        self, workers: int, app: str = SERVICE_APP, *, port: int | None = None, **extra: str
    ) -> Server:
        """Serve `app` from this tree's code on its port (or `port`), once it answers."""
        return Server(self.env(**extra), workers, app=app, port=port or self.port, cwd=self.root)

    def run(self, *args: str) -> str:
        """Run `python args...` with this tree's code and environment; its stdout."""
        result = subprocess.run(
            [sys.executable, *args],
            cwd=self.root,
            env=self.env(),
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise SystemExit(f"{self.label}: python {' '.join(args)} failed:\n{result.stderr}")
        return result.stdout

    def check_imports_own_code(self) -> None:
        """Stop unless this tree's servers will import the tree's own `api` and `db`."""
        for package in ("api", "db"):
            path = Path(self.run("-c", f"import {package}; print({package}.__file__)").strip())
            if not path.resolve().is_relative_to(self.root.resolve()):
                raise SystemExit(
                    f"{self.label}: `import {package}` loads {path}, not the tree's own code"
                )


def commit_of(root: Path) -> str:
    """The short commit of a checkout, marked when its files differ from that commit."""
    commit = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return (commit or "unknown") + ("+changes" if dirty else "")


def current_tree(port: int, database_url: str, app_name: str) -> Tree:
    """This checkout, on the bench's database."""
    return Tree("current", ROOT, port, database_url, app_name)


def baseline_tree(root: Path, port: int, database_url: str, app_name: str) -> Tree:
    """Another checkout, with a fresh database of its own migrated by its own Alembic, so
    the two trees never need the same schema."""
    if not (root / "api" / "__init__.py").is_file() or not (root / "alembic.ini").is_file():
        raise SystemExit(f"--baseline-tree {root}: not a checkout of this repository")
    url = with_database(database_url, database_name(database_url) + BASELINE_DB_SUFFIX)
    tree = Tree("baseline", root, port, url, app_name + BASELINE_DB_SUFFIX)
    tree.check_imports_own_code()
    recreate_database(url)
    tree.run("-m", "alembic", "upgrade", "head")
    return tree


def database_name(url: str) -> str:
    """The database part of a Postgres URL."""
    return urlsplit(url).path.lstrip("/")


def with_database(url: str, name: str) -> str:
    """The same Postgres URL naming another database."""
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def _maintenance_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def recreate_database(url: str) -> None:
    """Drop the database of `url` if it exists and create it empty."""
    name = _identifier(database_name(url))

    async def recreate() -> None:
        conn = await asyncpg.connect(_maintenance_url(url))
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            await conn.execute(f"CREATE DATABASE {name}")
        finally:
            await conn.close()

    asyncio.run(recreate())


def drop_database(url: str) -> None:
    """Drop the database of `url`, closing whatever is still connected to it."""
    name = _identifier(database_name(url))

    async def drop() -> None:
        conn = await asyncpg.connect(_maintenance_url(url))
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await conn.close()

    asyncio.run(drop())
