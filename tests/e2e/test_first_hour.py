"""A newcomer's first hour: every command and the server say what is wrong in one line
with the fix (missing settings, no migrations, a wrong or unreachable database, a bad
PORT), never a traceback; `flask --app api --help` lists the commands whatever the
settings.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from tests.e2e.server import ROOT
from tests.e2e.test_start_up import FRESH_CLONE, key, procfile_web_command, run, run_procfile

COMMANDS = ("create-admin", "keys", "purge")
FLASK = [sys.executable, "-m", "flask", "--app", "api"]
# stdin for create-admin: a password, should the command get that far.
PASSWORD = "correct horse battery staple\n"


def with_database(database_url: str, name: str) -> str:
    parts = urlsplit(database_url)
    return urlunsplit(parts._replace(path="/" + name))


def with_port(database_url: str, port: int) -> str:
    parts = urlsplit(database_url)
    return urlunsplit(parts._replace(netloc=f"{parts.username or 'postgres'}@127.0.0.1:{port}"))


def one_line(result: subprocess.CompletedProcess[str], *naming: str) -> str:
    """The one line `result` printed on stderr (blank lines aside), naming each of `naming`."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, result.stderr
    for word in naming:
        assert word in lines[0], lines[0]
    return lines[0]


def flask(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FLASK, *args],
        cwd=ROOT,
        # A fresh clone's environment (no settings), but for `env`.
        env={**os.environ, **FRESH_CLONE, "ARGON2_MEMORY_KIB": "1024", **env},
        input=PASSWORD,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def empty_database(database_url: str) -> Iterator[str]:
    """A database that exists, with no tables: `alembic upgrade head` never ran on it."""
    name = f"first_hour_{uuid.uuid4().hex[:12]}"
    admin = with_database(database_url.replace("+asyncpg", ""), "postgres")

    async def sql(statement: str) -> None:
        connection = await asyncpg.connect(admin)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(sql(f'CREATE DATABASE "{name}"'))
    try:
        yield with_database(database_url, name)
    finally:
        asyncio.run(sql(f'DROP DATABASE IF EXISTS "{name}"'))


def test_flask_help_lists_every_command_without_settings_and_names_the_missing_one() -> None:
    result = flask(["--help"], {})
    print(f"flask --app api --help, no settings: exit {result.returncode}, {result.stderr!r}")
    assert result.returncode == 0
    one_line(result, "JWT_SECRET_KEY is not set")
    listed = {line.split()[0] for line in result.stdout.split("Commands:")[1].splitlines() if line}
    assert set(COMMANDS) <= listed, result.stdout


def test_flask_help_with_settings_prints_no_error(database_url: str) -> None:
    result = flask(["--help"], {"DATABASE_URL": database_url, "JWT_SECRET_KEY": key()})
    assert (result.returncode, result.stderr) == (0, "")
    assert all(f"  {command} " in result.stdout for command in COMMANDS), result.stdout


@pytest.mark.parametrize(
    "args",
    [["purge"], ["create-admin", "ada@example.com"], ["keys", "show"]],
    ids=["purge", "create-admin", "keys-show"],
)
def test_every_command_without_settings_prints_one_line_naming_the_setting(
    args: list[str],
) -> None:
    result = flask(args, {})
    line = one_line(result, "JWT_SECRET_KEY is not set", "secrets.token_urlsafe")
    print(f"flask {args[0]}, no settings: exit {result.returncode}, {line!r}")
    assert result.returncode == 1
    assert result.stdout == ""


@pytest.mark.parametrize(
    "args", [["purge"], ["create-admin", "ada@example.com"]], ids=["purge", "create-admin"]
)
def test_commands_on_a_database_without_migrations_say_to_run_them(
    args: list[str], empty_database: str
) -> None:
    result = flask(args, {"DATABASE_URL": empty_database, "JWT_SECRET_KEY": key()})
    line = one_line(result, "alembic upgrade head", urlsplit(empty_database).path)
    print(f"flask {args[0]}, no migrations: exit {result.returncode}, {line!r}")
    assert result.returncode == 1


@pytest.mark.parametrize(
    "args", [["purge"], ["create-admin", "ada@example.com"]], ids=["purge", "create-admin"]
)
def test_commands_on_a_database_that_does_not_exist_say_to_create_it(
    args: list[str], database_url: str
) -> None:
    name = f"no_such_{uuid.uuid4().hex[:12]}"
    env = {"DATABASE_URL": with_database(database_url, name), "JWT_SECRET_KEY": key()}
    result = flask(args, env)
    line = one_line(result, f"createdb {name}", "DATABASE_URL")
    print(f"flask {args[0]}, no such database: exit {result.returncode}, {line!r}")
    assert result.returncode == 1


@pytest.mark.parametrize(
    "args", [["purge"], ["create-admin", "ada@example.com"]], ids=["purge", "create-admin"]
)
def test_commands_with_postgres_unreachable_say_where_they_looked(
    args: list[str], database_url: str
) -> None:
    env = {"DATABASE_URL": with_port(database_url, 1), "JWT_SECRET_KEY": key()}
    result = flask(args, env)
    line = one_line(result, "unreachable at 127.0.0.1:1", "DATABASE_URL")
    print(f"flask {args[0]}, Postgres unreachable: exit {result.returncode}, {line!r}")
    assert result.returncode == 1


def test_server_on_a_database_without_migrations_says_to_run_them(
    empty_database: str, redis_url: str
) -> None:
    env = {"DATABASE_URL": empty_database, "REDIS_URL": redis_url, "JWT_SECRET_KEY": key()}
    result = run_procfile(env)
    line = one_line(result, "alembic upgrade head", "users")
    print(f"Procfile, no migrations: exit {result.returncode}, {line!r}")
    assert result.returncode == 2


def test_server_on_a_database_that_does_not_exist_says_to_create_it(
    database_url: str, redis_url: str
) -> None:
    name = f"no_such_{uuid.uuid4().hex[:12]}"
    env = {
        "DATABASE_URL": with_database(database_url, name),
        "REDIS_URL": redis_url,
        "JWT_SECRET_KEY": key(),
    }
    result = run_procfile(env)
    line = one_line(result, f"createdb {name}")
    print(f"Procfile, no such database: exit {result.returncode}, {line!r}")
    assert result.returncode == 2


def test_procfile_without_port_prints_one_line_naming_it(database_url: str) -> None:
    command = "unset PORT; exec " + procfile_web_command()
    result = run(["bash", "-c", command], {"DATABASE_URL": database_url, "JWT_SECRET_KEY": key()})
    line = one_line(result, "PORT", "PORT=8000")
    print(f"Procfile, PORT unset: exit {result.returncode}, {line!r}")
    assert result.returncode != 0


@pytest.mark.parametrize("port", ["abc", "99999", "0"])
def test_procfile_with_a_bad_port_prints_one_line_naming_it(port: str, database_url: str) -> None:
    env = {"DATABASE_URL": database_url, "JWT_SECRET_KEY": key(), "PORT": port}
    result = run_procfile(env)
    line = one_line(result, f"PORT={port!r}", "1 to 65535")
    print(f"Procfile, PORT={port}: exit {result.returncode}, {line!r}")
    assert result.returncode == 2


def test_scripts_run_with_a_bad_port_stops_before_migrating(tmp_path: Path) -> None:
    env = {"PORT": "abc", "DEV_KEY_FILE": str(tmp_path / "jwt_secret_key")}
    result = run([str(ROOT / "scripts" / "run")], env)
    line = one_line(result, "PORT='abc'")
    print(f"scripts/run, PORT=abc: exit {result.returncode}, {line!r}")
    assert result.returncode == 2
