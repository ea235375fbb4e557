"""Every knob of the service, read from the environment once and validated at start-up.

What each variable is, how it is parsed and what it defaults to is declared once, in
api/config/settings_table.py; this module holds the typed result.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from api.config.settings_parsers import SettingsError, normalise_database_url, validate_redis_url
from api.config.settings_table import (
    DEFAULT_DATABASE_URL,
    DEFAULT_REDIS_URL,
    ENVIRONMENTS,
    SETTINGS,
    setting,
)

__all__ = [
    "DEFAULT_DATABASE_URL",
    "DEFAULT_REDIS_URL",
    "ENVIRONMENTS",
    "Settings",
    "SettingsError",
    "database_url_from_env",
    "normalise_database_url",
    "validate_redis_url",
]


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Typed, validated configuration of one process: one field per row of the table."""

    app_env: str
    cookie_secure: bool
    cors_allowed_origins: tuple[str, ...]
    database_url: str
    redis_url: str
    redis_key_prefix: str
    redis_cluster: bool
    jwt_algorithm: str
    jwt_secret_key: str | None = field(repr=False)
    jwt_private_key_file: str | None
    jwt_public_key_files: tuple[str, ...]
    jwt_issuer: str | None
    jwt_audience: str | None
    access_token_ttl: int
    refresh_token_ttl: int
    refresh_reuse_grace: int
    role_permissions: dict[str, tuple[str, ...]]
    mfa_required_roles: tuple[str, ...]
    mfa_issuer: str
    mfa_encryption_key: tuple[str, ...] = field(repr=False)
    mfa_token_ttl: int
    password_min_length: int
    max_body_bytes: int
    request_read_timeout: int
    drain_delay: float
    argon2_memory_kib: int
    argon2_time_cost: int
    argon2_parallelism: int
    hash_workers: int
    hash_queue_max: int
    hash_wait_budget: float
    database_statement_cache_size: int
    db_pool_size: int
    # Operations: the access log and the routes that are public without a token.
    access_log: bool
    metrics_enabled: bool
    metrics_token: str | None = field(repr=False)
    openapi_enabled: bool
    docs_enabled: bool
    db_pool_timeout: float
    redis_pool_size: int
    redis_timeout: float
    revocation_cache: bool
    revocation_cache_max_age: float
    revocation_cache_size: int
    db_application_name: str
    log_level: str
    log_format: str
    smtp_url: str | None = field(repr=False)
    mail_from: str
    public_link_base: str | None
    password_reset_ttl: int
    email_verify_ttl: int
    require_verified_email: bool
    mail_send_in_workers: bool
    mail_max_attempts: int
    rate_limits_enabled: bool
    login_rate_limit: str
    register_rate_limit: str
    register_attempt_limit: str
    login_failure_limit: str
    device_failure_limit: str
    device_token_ttl: int
    login_unknown_limit: str
    forgot_password_ip_limit: str
    forgot_password_email_limit: str
    account_mail_limit: str
    trusted_proxy_hops: int
    ipv6_rate_limit_prefix: int
    session_retention: int
    audit_retention_days: int
    session_purge_interval: int

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build the settings from `environ` (default: os.environ).

        Raises:
            SettingsError: a variable is malformed or unsafe for APP_ENV.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for row in SETTINGS:
            values[row.field] = row.read(environ, values)
        settings = cls(**values)
        for row in SETTINGS:
            if row.check is not None:
                row.check(settings)
        return settings

    def to_env(self) -> dict[str, str]:
        """Every variable of the table, as text that `from_env` reads back as these settings."""
        return {row.variable: row.write(getattr(self, row.field)) for row in SETTINGS}


def database_url_from_env(environ: Mapping[str, str] | None = None) -> str:
    """DATABASE_URL alone, normalised as the app reads it (for migrations and tools).

    Raises:
        SettingsError: the URL is not a Postgres URL.
    """
    environ = os.environ if environ is None else environ
    return cast(str, setting("DATABASE_URL").read(environ, {}))
