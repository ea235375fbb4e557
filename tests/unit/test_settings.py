"""Settings.from_env: every variable validated at start-up, with a sentence naming it."""

from __future__ import annotations

import os
import secrets

import pytest

from api.config.settings import ENVIRONMENTS, Settings, SettingsError, database_url_from_env
from tests.published_keys import FIRST_DEVELOPMENT_DEFAULT

SECRET = secrets.token_urlsafe(48)


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


def test_redis_cluster_is_off_unless_asked_for() -> None:
    assert not from_env().redis_cluster
    assert from_env(REDIS_CLUSTER="true", REDIS_URL="redis://10.0.0.1:7000/0").redis_cluster


@pytest.mark.parametrize("url", ["redis://10.0.0.1:7000/3", "unix:///run/redis.sock"])
def test_redis_cluster_refuses_a_database_index_or_a_socket(url: str) -> None:
    with pytest.raises(SettingsError, match="REDIS_CLUSTER"):
        from_env(REDIS_CLUSTER="true", REDIS_URL=url)


@pytest.mark.parametrize("app_env", ENVIRONMENTS)
@pytest.mark.parametrize("secret", [None, "", secrets.token_urlsafe(48)[:31]])
def test_missing_or_short_secret_refuses_to_start_in_every_environment(
    app_env: str, secret: str | None
) -> None:
    env = {"APP_ENV": app_env}
    if secret is not None:
        env["JWT_SECRET_KEY"] = secret
    with pytest.raises(SettingsError, match=r"^JWT_SECRET_KEY .*secrets\.token_urlsafe"):
        Settings.from_env(env)


@pytest.mark.parametrize("app_env", ENVIRONMENTS)
@pytest.mark.parametrize("secret", [FIRST_DEVELOPMENT_DEFAULT, "k" * 48, "changeme" * 4])
def test_published_or_placeholder_secret_is_refused_in_every_environment(
    app_env: str, secret: str
) -> None:
    with pytest.raises(SettingsError, match=r"^JWT_SECRET_KEY is a published or placeholder"):
        Settings.from_env({"APP_ENV": app_env, "JWT_SECRET_KEY": secret})


def test_a_random_32_byte_secret_starts_production() -> None:
    secret = secrets.token_urlsafe(24)  # 32 characters
    settings = Settings.from_env({"APP_ENV": "production", "JWT_SECRET_KEY": secret})
    assert settings.is_production
    assert settings.jwt_secret_key == secret
    assert secret not in repr(settings)


def test_unset_app_env_means_production_with_secure_cookies() -> None:
    settings = Settings.from_env({"JWT_SECRET_KEY": SECRET})
    assert (settings.app_env, settings.cookie_secure) == ("production", True)


@pytest.mark.parametrize(
    ("app_env", "cookie_secure", "expected"),
    [
        ("development", None, False),
        ("test", None, False),
        ("development", "true", True),
        ("test", "true", True),
        ("production", "true", True),
    ],
)
def test_cookie_secure_defaults_off_only_for_development_and_test(
    app_env: str, cookie_secure: str | None, expected: bool
) -> None:
    env = {"APP_ENV": app_env, "JWT_SECRET_KEY": SECRET}
    if cookie_secure is not None:
        env["COOKIE_SECURE"] = cookie_secure
    assert Settings.from_env(env).cookie_secure is expected


def test_production_refuses_cookies_without_secure() -> None:
    with pytest.raises(SettingsError, match=r"^COOKIE_SECURE"):
        Settings.from_env(
            {"APP_ENV": "production", "JWT_SECRET_KEY": SECRET, "COOKIE_SECURE": "false"}
        )


def test_migrations_read_database_url_without_the_rest_of_the_settings() -> None:
    url = database_url_from_env({"DATABASE_URL": "postgres://u@db/app"})
    assert url == "postgresql+asyncpg://u@db/app"
    with pytest.raises(SettingsError, match="DATABASE_URL"):
        database_url_from_env({"DATABASE_URL": "mysql://u@db/app"})


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
    settings = from_env(
        RATE_LIMITS_ENABLED="false",
        LOGIN_RATE_LIMIT="100 per 2 minutes",
        REGISTER_RATE_LIMIT="3/hour",
        REGISTER_ATTEMPT_LIMIT="20 per hour",
        LOGIN_FAILURE_LIMIT="4/10 minutes",
        TRUSTED_PROXY_HOPS="2",
        IPV6_RATE_LIMIT_PREFIX="56",
    )
    assert settings.rate_limits_enabled is False
    assert settings.login_rate_limit == "100 per 2 minutes"
    assert settings.register_rate_limit == "3/hour"
    assert settings.register_attempt_limit == "20 per hour"
    assert settings.login_failure_limit == "4/10 minutes"
    assert settings.trusted_proxy_hops == 2
    assert settings.ipv6_rate_limit_prefix == 56


def test_registration_limits_default_to_1000_accounts_and_60_failures_an_hour() -> None:
    settings = from_env()
    assert (settings.register_rate_limit, settings.register_attempt_limit) == (
        "1000/hour",
        "60/hour",
    )
    with pytest.raises(SettingsError, match="REGISTER_ATTEMPT_LIMIT"):
        from_env(REGISTER_ATTEMPT_LIMIT="lots")


def test_device_and_unknown_address_limits_have_defaults_and_are_validated() -> None:
    settings = from_env()
    assert settings.device_failure_limit == "5/15 minutes"
    assert settings.device_token_ttl == 365 * 24 * 3600
    assert settings.login_unknown_limit == "300/minute"
    with pytest.raises(SettingsError, match="DEVICE_FAILURE_LIMIT"):
        from_env(DEVICE_FAILURE_LIMIT="few")
    with pytest.raises(SettingsError, match="LOGIN_UNKNOWN_LIMIT"):
        from_env(LOGIN_UNKNOWN_LIMIT="unbounded")
    with pytest.raises(SettingsError, match="DEVICE_TOKEN_TTL"):
        from_env(DEVICE_TOKEN_TTL="0")


def test_ipv6_rate_limit_prefix_defaults_to_64_and_must_be_a_prefix_length() -> None:
    assert from_env().ipv6_rate_limit_prefix == 64
    for bad in ("0", "129", "/64"):
        with pytest.raises(SettingsError, match="IPV6_RATE_LIMIT_PREFIX"):
            from_env(IPV6_RATE_LIMIT_PREFIX=bad)


def test_malformed_rate_limit_or_flag_stops_start_up() -> None:
    with pytest.raises(SettingsError, match="LOGIN_RATE_LIMIT"):
        from_env(LOGIN_RATE_LIMIT="lots")
    with pytest.raises(SettingsError, match="RATE_LIMITS_ENABLED"):
        from_env(RATE_LIMITS_ENABLED="maybe")


def test_hash_queue_bound_defaults_to_256_per_hashing_thread_and_can_be_set() -> None:
    assert from_env(HASH_WORKERS="3").hash_queue_max == 768
    assert from_env(HASH_WORKERS="3", HASH_QUEUE_MAX="5").hash_queue_max == 5
    with pytest.raises(SettingsError, match="HASH_QUEUE_MAX"):
        from_env(HASH_QUEUE_MAX="0")


def test_hash_wait_budget_defaults_to_2_seconds_and_takes_fractions() -> None:
    assert from_env().hash_wait_budget == 2.0
    assert from_env(HASH_WAIT_BUDGET="0.5").hash_wait_budget == 0.5
    for bad in ("0", "-1", "61", "soon", "nan"):
        with pytest.raises(SettingsError, match="HASH_WAIT_BUDGET"):
            from_env(HASH_WAIT_BUDGET=bad)


def test_session_purge_settings_default_to_a_week_kept_and_no_periodic_purge() -> None:
    defaults = from_env()
    assert (defaults.session_retention, defaults.session_purge_interval) == (7 * 24 * 3600, 0)
    settings = from_env(SESSION_RETENTION="3600", SESSION_PURGE_INTERVAL="300")
    assert (settings.session_retention, settings.session_purge_interval) == (3600, 300)


@pytest.mark.parametrize("name", ["SESSION_RETENTION", "SESSION_PURGE_INTERVAL"])
def test_negative_or_malformed_session_purge_settings_stop_start_up(name: str) -> None:
    with pytest.raises(SettingsError, match=name):
        from_env(**{name: "-1"})
    with pytest.raises(SettingsError, match=name):
        from_env(**{name: "a week"})


def test_request_read_timeout_defaults_to_30_seconds_and_is_bounded() -> None:
    assert from_env().request_read_timeout == 30
    assert from_env(REQUEST_READ_TIMEOUT="2").request_read_timeout == 2
    for value in ("0", "-1", "3601", "1.5", "soon"):
        with pytest.raises(SettingsError, match="REQUEST_READ_TIMEOUT"):
            from_env(REQUEST_READ_TIMEOUT=value)


def test_drain_delay_defaults_to_none_and_takes_fractions_up_to_five_minutes() -> None:
    assert from_env().drain_delay == 0
    assert from_env(DRAIN_DELAY="0").drain_delay == 0
    assert from_env(DRAIN_DELAY="2.5").drain_delay == 2.5
    assert from_env(DRAIN_DELAY="300").drain_delay == 300
    for value in ("-0.5", "300.5", "nan", "inf", "-0x", "soon"):
        with pytest.raises(SettingsError, match=r"^DRAIN_DELAY must be a number of seconds 0 "):
            from_env(DRAIN_DELAY=value)


@pytest.mark.parametrize("name", ["DB_POOL_TIMEOUT", "REDIS_TIMEOUT"])
def test_pool_timeouts_are_seconds_above_zero_and_at_most_a_minute(name: str) -> None:
    assert getattr(from_env(**{name: "0.25"}), name.lower()) == 0.25
    assert getattr(from_env(**{name: "60"}), name.lower()) == 60.0
    for value in ("0", "-1", "60.5", "nan", "inf", "soon"):
        with pytest.raises(SettingsError, match=rf"^{name} must be a number of seconds"):
            from_env(**{name: value})


def test_hashing_threads_default_to_the_cores_shared_among_the_worker_processes() -> None:
    cores = os.cpu_count() or 1
    assert from_env(WEB_CONCURRENCY="1").hash_workers == cores
    assert from_env().hash_workers == max(cores // 2, 1)
    assert from_env(WEB_CONCURRENCY=str(cores * 4)).hash_workers == 1
    assert from_env(WEB_CONCURRENCY="1", HASH_WORKERS="3").hash_workers == 3


def test_cors_is_closed_unless_origins_are_listed() -> None:
    assert from_env().cors_allowed_origins == ()
    assert from_env(CORS_ALLOWED_ORIGINS=" ").cors_allowed_origins == ()


def test_cors_origins_are_read_in_the_form_browsers_send_them() -> None:
    origins = from_env(
        CORS_ALLOWED_ORIGINS="https://App.Example.com/, http://localhost:5173,"
        "https://app.example.com:443,http://[::1]:8080, http://127.0.0.1:80"
    ).cors_allowed_origins
    assert origins == (
        "https://app.example.com",
        "http://localhost:5173",
        "http://[::1]:8080",
        "http://127.0.0.1",
    )


@pytest.mark.parametrize(
    "value",
    [
        "*",
        "https://*.example.com",
        "null",
        "app.example.com",
        "ftp://app.example.com",
        "https://app.example.com/path",
        "https://app.example.com?x=1",
        "https://user@app.example.com",
        "https://app.example.com:99999",
        "https://app.example.com,*",
    ],
)
def test_cors_refuses_wildcards_and_anything_but_an_origin(value: str) -> None:
    with pytest.raises(SettingsError, match="CORS_ALLOWED_ORIGINS"):
        from_env(CORS_ALLOWED_ORIGINS=value)
