"""Settings.from_env: every variable validated at start-up, with a sentence naming it."""

from __future__ import annotations

import logging

import pytest

from api.settings import DEVELOPMENT_SECRET, Settings, SettingsError

SECRET = "s" * 48


def from_env(**env: str) -> Settings:
    return Settings.from_env({"APP_ENV": "test", "JWT_SECRET_KEY": SECRET, **env})


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db:5432/app", "postgresql+asyncpg://u:p@db:5432/app"),
        ("postgresql://u:p@db:5432/app", "postgresql+asyncpg://u:p@db:5432/app"),
        ("postgresql+psycopg2://u:p@db/app", "postgresql+asyncpg://u:p@db/app"),
        ("postgresql+asyncpg://u:p@db/app", "postgresql+asyncpg://u:p@db/app"),
        (
            "postgres://u:p@db:5432/app?sslmode=require",
            "postgresql+asyncpg://u:p@db:5432/app?ssl=require",
        ),
    ],
)
def test_database_url_is_normalised_for_asyncpg(given: str, expected: str) -> None:
    assert from_env(DATABASE_URL=given).database_url == expected


@pytest.mark.parametrize("url", ["mysql://u:p@db/app", "sqlite:///app.db", "db:5432/app"])
def test_database_url_that_is_not_postgres_is_rejected(url: str) -> None:
    with pytest.raises(SettingsError, match="DATABASE_URL"):
        from_env(DATABASE_URL=url)


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "rediss://host:6380/3"])
def test_redis_url_with_redis_scheme_is_accepted(url: str) -> None:
    assert from_env(REDIS_URL=url).redis_url == url


@pytest.mark.parametrize("url", ["http://host:6379/0", "redis://host:6379/abc"])
def test_redis_url_with_other_scheme_or_non_numeric_index_is_rejected(url: str) -> None:
    with pytest.raises(SettingsError, match="REDIS_URL"):
        from_env(REDIS_URL=url)


@pytest.mark.parametrize("secret", [None, "k" * 31])
def test_production_without_a_32_byte_secret_refuses_to_start(secret: str | None) -> None:
    env = {"APP_ENV": "production"}
    if secret is not None:
        env["JWT_SECRET_KEY"] = secret
    with pytest.raises(SettingsError, match="JWT_SECRET_KEY"):
        Settings.from_env(env)


def test_production_with_a_32_byte_secret_starts() -> None:
    settings = Settings.from_env({"APP_ENV": "production", "JWT_SECRET_KEY": "k" * 32})
    assert settings.is_production
    assert settings.jwt_secret_key == "k" * 32


def test_development_without_secret_uses_shared_secret_and_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="api.settings"):
        settings = Settings.from_env({"APP_ENV": "development"})
    assert settings.jwt_secret_key == DEVELOPMENT_SECRET
    assert any(
        r.levelno == logging.WARNING and "JWT_SECRET_KEY" in r.getMessage() for r in caplog.records
    )


def test_development_with_a_short_secret_is_rejected() -> None:
    with pytest.raises(SettingsError, match="JWT_SECRET_KEY"):
        Settings.from_env({"APP_ENV": "development", "JWT_SECRET_KEY": "short"})


@pytest.mark.parametrize("value", ["abc", "0", "-5", "1.5"])
def test_bad_access_token_ttl_is_rejected_naming_the_variable(value: str) -> None:
    with pytest.raises(SettingsError, match="ACCESS_TOKEN_TTL"):
        from_env(ACCESS_TOKEN_TTL=value)


def test_refresh_ttl_shorter_than_access_ttl_is_rejected() -> None:
    with pytest.raises(SettingsError, match="REFRESH_TOKEN_TTL"):
        from_env(ACCESS_TOKEN_TTL="900", REFRESH_TOKEN_TTL="899")


def test_integers_are_read_from_the_environment() -> None:
    settings = from_env(ACCESS_TOKEN_TTL="5", REFRESH_TOKEN_TTL="60", MAX_BODY_BYTES="2048")
    assert (settings.access_token_ttl, settings.refresh_token_ttl) == (5, 60)
    assert settings.max_body_bytes == 2048


def test_unknown_app_env_is_rejected() -> None:
    with pytest.raises(SettingsError, match="APP_ENV"):
        Settings.from_env({"APP_ENV": "staging", "JWT_SECRET_KEY": SECRET})


def test_rate_limit_settings_are_read_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "RATE_LIMITS_ENABLED": "false",
            "LOGIN_RATE_LIMIT": "100 per 2 minutes",
            "REGISTER_RATE_LIMIT": "3/hour",
            "LOGIN_FAILURE_LIMIT": "4/10 minutes",
            "TRUSTED_PROXY_HOPS": "2",
            "IPV6_RATE_LIMIT_PREFIX": "56",
        }
    )
    assert settings.rate_limits_enabled is False
    assert settings.login_rate_limit == "100 per 2 minutes"
    assert settings.register_rate_limit == "3/hour"
    assert settings.login_failure_limit == "4/10 minutes"
    assert settings.trusted_proxy_hops == 2
    assert settings.ipv6_rate_limit_prefix == 56


def test_ipv6_rate_limit_prefix_defaults_to_64_and_must_be_a_prefix_length() -> None:
    assert from_env().ipv6_rate_limit_prefix == 64
    for bad in ("0", "129", "/64"):
        with pytest.raises(SettingsError, match="IPV6_RATE_LIMIT_PREFIX"):
            from_env(IPV6_RATE_LIMIT_PREFIX=bad)


def test_malformed_rate_limit_or_flag_stops_start_up() -> None:
    with pytest.raises(SettingsError, match="LOGIN_RATE_LIMIT"):
        Settings.from_env({"LOGIN_RATE_LIMIT": "lots"})
    with pytest.raises(SettingsError, match="RATE_LIMITS_ENABLED"):
        Settings.from_env({"RATE_LIMITS_ENABLED": "maybe"})
