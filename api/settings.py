"""Every knob of the service, read from the environment once and validated at start-up."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from limits import parse

logger = logging.getLogger(__name__)

# Shared by every worker so that tokens verify across processes in development;
# production refuses to start with it (see Settings.from_env).
DEVELOPMENT_SECRET = "development-only-secret-never-use-in-production-0000"  # noqa: S105
MIN_SECRET_BYTES = 32
ENVIRONMENTS = ("development", "test", "production")
ALGORITHMS = ("HS256",)


class SettingsError(ValueError):
    """A variable of the environment has a value the service cannot run with."""


@dataclass(frozen=True)
class Settings:
    """Typed, validated configuration of one process."""

    app_env: str = "development"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
    redis_url: str = "redis://127.0.0.1:6379/0"
    jwt_secret_key: str = field(default=DEVELOPMENT_SECRET, repr=False)
    jwt_algorithm: str = "HS256"
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    access_token_ttl: int = 900
    refresh_token_ttl: int = 30 * 24 * 3600
    refresh_reuse_grace: int = 10
    password_min_length: int = 12
    max_body_bytes: int = 64 * 1024
    argon2_memory_kib: int = 19 * 1024
    argon2_time_cost: int = 2
    argon2_parallelism: int = 1
    hash_workers: int = max(os.cpu_count() or 1, 1)
    db_pool_size: int = 10
    db_pool_timeout: float = 5.0
    db_application_name: str = "auth-api"
    redis_pool_size: int = 20
    redis_timeout: float = 2.0
    request_threads: int = 8
    log_level: str = "INFO"
    rate_limits_enabled: bool = True
    login_rate_limit: str = "30/minute"
    register_rate_limit: str = "10/hour"
    login_failure_limit: str = "5/15 minutes"
    trusted_proxy_hops: int = 0
    ipv6_rate_limit_prefix: int = 64

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build the settings from `environ` (default: os.environ).

        Raises:
            SettingsError: a variable is malformed or unsafe for APP_ENV.
        """
        env = _Env(os.environ if environ is None else environ)
        app_env = env.choice("APP_ENV", "development", ENVIRONMENTS)
        settings = cls(
            app_env=app_env,
            database_url=normalise_database_url(env.text("DATABASE_URL", cls.database_url)),
            redis_url=validate_redis_url(env.text("REDIS_URL", cls.redis_url)),
            jwt_secret_key=_secret(env, app_env),
            jwt_algorithm=env.choice("JWT_ALGORITHM", "HS256", ALGORITHMS),
            jwt_issuer=env.optional("JWT_ISSUER"),
            jwt_audience=env.optional("JWT_AUDIENCE"),
            access_token_ttl=env.integer("ACCESS_TOKEN_TTL", cls.access_token_ttl, 1),
            refresh_token_ttl=env.integer("REFRESH_TOKEN_TTL", cls.refresh_token_ttl, 1),
            refresh_reuse_grace=env.integer("REFRESH_REUSE_GRACE", cls.refresh_reuse_grace, 0),
            password_min_length=env.integer(
                "PASSWORD_MIN_LENGTH", cls.password_min_length, 1, 1024
            ),
            max_body_bytes=env.integer("MAX_BODY_BYTES", cls.max_body_bytes, 1024),
            argon2_memory_kib=env.integer("ARGON2_MEMORY_KIB", cls.argon2_memory_kib, 8),
            argon2_time_cost=env.integer("ARGON2_TIME_COST", cls.argon2_time_cost, 1),
            argon2_parallelism=env.integer("ARGON2_PARALLELISM", cls.argon2_parallelism, 1),
            hash_workers=env.integer("HASH_WORKERS", cls.hash_workers, 1),
            db_pool_size=env.integer("DB_POOL_SIZE", cls.db_pool_size, 1),
            db_application_name=env.text("DB_APPLICATION_NAME", cls.db_application_name),
            redis_pool_size=env.integer("REDIS_POOL_SIZE", cls.redis_pool_size, 1),
            request_threads=env.integer("REQUEST_THREADS", cls.request_threads, 1),
            log_level=env.choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
            rate_limits_enabled=env.flag("RATE_LIMITS_ENABLED", True),
            login_rate_limit=env.rate_limit("LOGIN_RATE_LIMIT", cls.login_rate_limit),
            register_rate_limit=env.rate_limit("REGISTER_RATE_LIMIT", cls.register_rate_limit),
            login_failure_limit=env.rate_limit("LOGIN_FAILURE_LIMIT", cls.login_failure_limit),
            trusted_proxy_hops=env.integer("TRUSTED_PROXY_HOPS", cls.trusted_proxy_hops, 0, 10),
            ipv6_rate_limit_prefix=env.integer(
                "IPV6_RATE_LIMIT_PREFIX", cls.ipv6_rate_limit_prefix, 1, 128
            ),
        )
        if settings.refresh_token_ttl < settings.access_token_ttl:
            raise SettingsError(
                "REFRESH_TOKEN_TTL must be at least ACCESS_TOKEN_TTL "
                f"({settings.access_token_ttl} s); it is {settings.refresh_token_ttl} s."
            )
        return settings


def _secret(env: _Env, app_env: str) -> str:
    secret = env.optional("JWT_SECRET_KEY")
    if secret is not None and len(secret.encode()) >= MIN_SECRET_BYTES:
        return secret
    if app_env == "production":
        raise SettingsError(
            f"JWT_SECRET_KEY must be set to at least {MIN_SECRET_BYTES} random bytes "
            "when APP_ENV=production, e.g. the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`."
        )
    if secret is not None:
        raise SettingsError(
            f"JWT_SECRET_KEY is shorter than {MIN_SECRET_BYTES} bytes; "
            "unset it to use the development default, or set a longer one."
        )
    logger.warning(
        "JWT_SECRET_KEY is not set: using the shared development secret. "
        "Never run like this in production (APP_ENV=production refuses to)."
    )
    return DEVELOPMENT_SECRET


def normalise_database_url(url: str) -> str:
    """Rewrite a platform's Postgres URL (postgres://, postgresql+psycopg2://...) for asyncpg.

    Raises:
        SettingsError: the URL is not a Postgres URL.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in ("postgres", "postgresql") or not parts.netloc:
        raise SettingsError(
            "DATABASE_URL must be a Postgres URL such as "
            "postgresql://user:password@host:5432/dbname; got scheme "
            f"{parts.scheme or '(none)'!r}."
        )
    # asyncpg spells libpq's `sslmode` as `ssl`.
    query = [("ssl", v) if k == "sslmode" else (k, v) for k, v in parse_qsl(parts.query)]
    return urlunsplit(("postgresql+asyncpg", parts.netloc, parts.path, urlencode(query), ""))


def validate_redis_url(url: str) -> str:
    """Accept redis://, rediss:// and unix:// URLs, with an optional database index.

    Raises:
        SettingsError: another scheme, or a database index that is not a number.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise SettingsError(
            "REDIS_URL must start with redis://, rediss:// or unix://, e.g. "
            f"redis://127.0.0.1:6379/0; got scheme {parts.scheme or '(none)'!r}."
        )
    index = parts.path.strip("/")
    if parts.scheme != "unix" and index and not index.isdigit():
        raise SettingsError(f"REDIS_URL's database index must be a number; got {index!r}.")
    return url


class _Env:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def optional(self, name: str) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or None

    def text(self, name: str, default: str) -> str:
        return self.optional(name) or default

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.text(name, default)
        if value not in allowed:
            raise SettingsError(f"{name} must be one of {', '.join(allowed)}; got {value!r}.")
        return value

    def flag(self, name: str, default: bool) -> bool:
        raw = self.optional(name)
        if raw is None:
            return default
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{name} must be true or false; got {raw!r}.")

    def rate_limit(self, name: str, default: str) -> str:
        value = self.text(name, default)
        try:
            parse(value)
        except ValueError:
            raise SettingsError(
                f"{name} must be a rate such as '30/minute' or '5 per 15 minutes'; got {value!r}."
            ) from None
        return value

    def integer(self, name: str, default: int, minimum: int, maximum: int | None = None) -> int:
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a whole number; got {raw!r}.") from None
        if value < minimum or (maximum is not None and value > maximum):
            upper = f" and at most {maximum}" if maximum is not None else ""
            raise SettingsError(f"{name} must be at least {minimum}{upper}; got {value}.")
        return value
