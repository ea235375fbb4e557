"""Every benchmark script answers --help with its own name, touching no database."""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from tests.e2e.server import ROOT
from tests.e2e.test_start_up import run

SCRIPTS = ["bench"]


async def _database_exists(url: str, name: str) -> bool:
    connection = await asyncpg.connect(url)
    try:
        return bool(await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await connection.close()


@pytest.mark.parametrize("flag", ["--help", "-h"])
@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_help_prints_usage_with_the_script_name_and_touches_no_database(
    script: str, flag: str, database_url: str
) -> None:
    parts = urlsplit(database_url.replace("+asyncpg", ""))
    # A database that does not exist: starting services or migrating would create it.
    name = f"help_probe_{uuid.uuid4().hex[:12]}"
    probe = urlunsplit((parts.scheme, parts.netloc, "/" + name, "", ""))
    result = run([str(ROOT / "scripts" / script), "--seconds", "1", flag], {"DATABASE_URL": probe})
    print(f"scripts/{script} {flag}: exit {result.returncode}, stderr {result.stderr!r}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: scripts/{script} "), result.stdout
    assert "__main__" not in result.stdout
    # What Alembic logs when it migrates; pip installing the venv first may name alembic.
    assert "alembic.runtime.migration" not in result.stderr
    assert "services:" not in result.stderr
    admin = urlunsplit((parts.scheme, parts.netloc, "/postgres", "", ""))
    assert not asyncio.run(_database_exists(admin, name))
