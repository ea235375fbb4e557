"""The settings table drives Settings, the README's table and the e2e server's environment."""

from __future__ import annotations

import atexit
import secrets
import shutil
import tempfile
from dataclasses import fields, replace
from functools import cache
from pathlib import Path
from typing import Any, get_origin, get_type_hints

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.asymmetric import rsa

from api.config.settings import Settings
from api.config.settings_parsers import (
    FernetKeys,
    Flag,
    KeyFile,
    KeyFiles,
    LinkBase,
    MailAddress,
    OneOf,
    Origins,
    PostgresUrl,
    Rate,
    RedisUrl,
    RoleNames,
    RolePermissionsJson,
    Seconds,
    SigningKey,
    SmtpUrl,
    Text,
    Whole,
)
from api.config.settings_table import SETTINGS, TABLE, Setting, markdown_table
from api.security.keys import private_pem, public_pem
from scripts.readme_settings import README, readme_table, rewrite
from tests.e2e.server import settings_env

DEFAULTS = Settings.from_env({"APP_ENV": "test", "JWT_SECRET_KEY": secrets.token_urlsafe(48)})


@cache
def rsa_key_files() -> tuple[str, str]:
    """A private and an older public RSA key, in files: JWT_ALGORITHM's next value is RS256."""
    folder = Path(tempfile.mkdtemp(prefix="settings-keys-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    signing, older = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in "ab")
    (folder / "signing.pem").write_bytes(private_pem(signing))
    (folder / "older.pub.pem").write_bytes(public_pem(older.public_key()))
    return str(folder / "signing.pem"), str(folder / "older.pub.pem")


def another_value(row: Setting[Any], value: Any) -> Any:
    """A valid value of `row` other than `value`, when its parser allows one."""
    match row.parser:
        case Flag():
            return not value
        case Whole(maximum=maximum):
            return value + 1 if maximum is None or value < maximum else value - 1
        case Seconds(maximum=maximum):
            return value / 2 if value else maximum / 2
        case OneOf(allowed=allowed):
            return allowed[(allowed.index(value) + 1) % len(allowed)]
        case Rate():
            return "7 per 3 minutes"
        case PostgresUrl():
            return value + "_other"
        case RedisUrl():
            # Database 0: a cluster (REDIS_CLUSTER flipped on too) has no other.
            return "redis://127.0.0.2:6380/0"
        case SigningKey():
            return secrets.token_urlsafe(48)
        case KeyFile():
            return rsa_key_files()[0]
        case KeyFiles():
            return (rsa_key_files()[1],)
        case Origins():
            return (*value, "https://app.example.com", "http://localhost:5173")
        case Text():
            return (value or "set") + "-other"
        case RolePermissionsJson():
            return {**value, "auditor": ("audit:read",)}
        case RoleNames():
            return ("admin", "user") if value == ("admin",) else ("admin",)
        case FernetKeys():
            return (*value, Fernet.generate_key().decode())
        case SmtpUrl():
            return "smtps://mailer:p%40ss@smtp.example.com:465"
        case LinkBase():
            return "https://app.example.com/account"
        case MailAddress():
            return "Example <no-reply@example.com>"
    raise AssertionError(f"teach another_value a value for {row.parser!r} ({row.variable})")


def everything_changed() -> Settings:
    return replace(
        DEFAULTS,
        **{row.field: another_value(row, getattr(DEFAULTS, row.field)) for row in SETTINGS},
    )


def test_every_settings_field_is_read_from_exactly_one_row() -> None:
    variables = [row.variable for row in TABLE]
    assert len(variables) == len(set(variables))
    assert sorted(row.field for row in SETTINGS) == sorted(f.name for f in fields(Settings))


def test_every_default_has_the_type_of_its_field() -> None:
    types = get_type_hints(Settings)
    for row in SETTINGS:
        value = getattr(DEFAULTS, row.field)
        expected = types[row.field]
        # isinstance can't check generics: dict[...] as a dict, tuple[str, ...] as a tuple.
        origin = get_origin(expected)
        kind = origin if origin in (dict, tuple) else expected
        assert isinstance(value, kind), (row.variable, value)


def test_the_e2e_environment_reproduces_settings_that_differ_in_every_field() -> None:
    changed = everything_changed()
    unchanged = {
        f.name for f in fields(Settings) if getattr(changed, f.name) == getattr(DEFAULTS, f.name)
    }
    # Only a setting with a single allowed value can't differ.
    assert unchanged == {
        row.field
        for row in SETTINGS
        if isinstance(row.parser, OneOf) and len(row.parser.allowed) == 1
    }
    env = settings_env(changed)
    assert set(env) == {row.variable for row in SETTINGS}
    assert Settings.from_env(env) == changed
    total = len(fields(Settings))
    print(f"round trip: {total} of {total} fields back, {total - len(unchanged)} non-default")


def test_the_e2e_environment_overrides_what_the_server_would_inherit() -> None:
    changed = everything_changed()
    assert changed.jwt_issuer is not None and DEFAULTS.jwt_issuer is None
    assert Settings.from_env({**settings_env(changed), **settings_env(DEFAULTS)}) == DEFAULTS
    assert Settings.from_env({**settings_env(DEFAULTS), **settings_env(changed)}) == changed


def test_db_pool_timeout_and_redis_timeout_are_read_from_the_environment() -> None:
    settings = Settings.from_env(
        {**settings_env(DEFAULTS), "DB_POOL_TIMEOUT": "0.5", "REDIS_TIMEOUT": "1.5"}
    )
    assert (settings.db_pool_timeout, settings.redis_timeout) == (0.5, 1.5)
    assert (DEFAULTS.db_pool_timeout, DEFAULTS.redis_timeout) == (5.0, 2.0)


def test_readme_configuration_table_is_the_settings_table() -> None:
    table = readme_table(README.read_text())
    assert table == markdown_table(), "run `python -m scripts.readme_settings`"
    print(f"README rows compared: {len(table.splitlines()) - 2}")


def test_the_regenerate_command_rewrites_only_the_table(tmp_path: Path) -> None:
    readme = README.read_text()
    table = readme_table(readme)
    stale = tmp_path / "README.md"
    stale.write_text(readme.replace(table, table.replace("`900`", "`901`", 1)))
    assert rewrite(stale) is True
    assert stale.read_text() == readme
    assert rewrite(stale) is False
