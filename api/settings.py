"""Every knob of the service, read from the environment once and validated at start-up."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from limits import parse

MIN_SECRET_BYTES = 32
# Fewer different characters than this is a placeholder ("changeme" * 4), not random bytes.
MIN_SECRET_DISTINCT_CHARACTERS = 8
# SHA-256 of keys published in this repository's history (the development default of
# the first version): anyone can sign tokens with them, so every environment refuses them.
PUBLISHED_SECRET_SHA256 = frozenset(
    {"92cee2a538cdc23d7d071934f42ea2454b3f19496039f5d2a89c6af60fa9cd8c"}
)
HOW_TO_MAKE_A_KEY = "`python3 -c 'import secrets; print(secrets.token_urlsafe(48))'`"
ENVIRONMENTS = ("development", "test", "production")
ALGORITHMS = ("HS256",)
DEFAULT_HASH_WORKERS = max(os.cpu_count() or 1, 1)
# At the OWASP argon2id cost a check takes 20-40 ms of a core, so 32 waiting per hashing
# thread is about a second of queue; costlier parameters or slower cores stretch it to a few.
HASH_QUEUE_PER_WORKER = 32


class SettingsError(ValueError):
    """A variable of the environment has a value the service cannot run with."""


@dataclass(frozen=True)
class Settings:
    """Typed, validated configuration of one process."""

    # Required, and never given a default: no key in the source can ever sign a token.
    jwt_secret_key: str = field(kw_only=True, repr=False)
    # Secure by default: a deploy that sets nothing runs as production.
    app_env: str = "production"
    cookie_secure: bool = True
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_cluster: bool = False
    jwt_algorithm: str = "HS256"
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    access_token_ttl: int = 900
    refresh_token_ttl: int = 30 * 24 * 3600
    refresh_reuse_grace: int = 10
    password_min_length: int = 12
    max_body_bytes: int = 64 * 1024
    request_read_timeout: int = 30
    argon2_memory_kib: int = 19 * 1024
    argon2_time_cost: int = 2
    argon2_parallelism: int = 1
    hash_workers: int = DEFAULT_HASH_WORKERS
    hash_queue_max: int = HASH_QUEUE_PER_WORKER * DEFAULT_HASH_WORKERS
    db_pool_size: int = 10
    database_statement_cache_size: int = 100
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
    session_retention: int = 7 * 24 * 3600
    session_purge_interval: int = 0
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
        app_env = env.choice("APP_ENV", cls.app_env, ENVIRONMENTS)
        hash_workers = env.integer("HASH_WORKERS", cls.hash_workers, 1)
        settings = cls(
            app_env=app_env,
            cookie_secure=_cookie_secure(env, app_env),
            database_url=database_url_from_env(environ),
            redis_url=validate_redis_url(env.text("REDIS_URL", cls.redis_url)),
            redis_cluster=env.flag("REDIS_CLUSTER", cls.redis_cluster),
            jwt_secret_key=_secret(env),
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
            request_read_timeout=env.integer(
                "REQUEST_READ_TIMEOUT", cls.request_read_timeout, 1, 3600
            ),
            argon2_memory_kib=env.integer("ARGON2_MEMORY_KIB", cls.argon2_memory_kib, 8),
            argon2_time_cost=env.integer("ARGON2_TIME_COST", cls.argon2_time_cost, 1),
            argon2_parallelism=env.integer("ARGON2_PARALLELISM", cls.argon2_parallelism, 1),
            hash_workers=hash_workers,
            hash_queue_max=env.integer("HASH_QUEUE_MAX", HASH_QUEUE_PER_WORKER * hash_workers, 1),
            db_pool_size=env.integer("DB_POOL_SIZE", cls.db_pool_size, 1),
            database_statement_cache_size=env.integer(
                "DATABASE_STATEMENT_CACHE_SIZE", cls.database_statement_cache_size, 0
            ),
            db_application_name=env.text("DB_APPLICATION_NAME", cls.db_application_name),
            redis_pool_size=env.integer("REDIS_POOL_SIZE", cls.redis_pool_size, 1),
            request_threads=env.integer("REQUEST_THREADS", cls.request_threads, 1),
            log_level=env.choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
            rate_limits_enabled=env.flag("RATE_LIMITS_ENABLED", True),
            login_rate_limit=env.rate_limit("LOGIN_RATE_LIMIT", cls.login_rate_limit),
            register_rate_limit=env.rate_limit("REGISTER_RATE_LIMIT", cls.register_rate_limit),
            login_failure_limit=env.rate_limit("LOGIN_FAILURE_LIMIT", cls.login_failure_limit),
            trusted_proxy_hops=env.integer("TRUSTED_PROXY_HOPS", cls.trusted_proxy_hops, 0, 10),
            session_retention=env.integer("SESSION_RETENTION", cls.session_retention, 0),
            session_purge_interval=env.integer(
                "SESSION_PURGE_INTERVAL", cls.session_purge_interval, 0
            ),
            ipv6_rate_limit_prefix=env.integer(
                "IPV6_RATE_LIMIT_PREFIX", cls.ipv6_rate_limit_prefix, 1, 128
            ),
        )
        if settings.redis_cluster:
            _check_cluster_url(settings.redis_url)
        if settings.refresh_token_ttl < settings.access_token_ttl:
            raise SettingsError(
                "REFRESH_TOKEN_TTL must be at least ACCESS_TOKEN_TTL "
                f"({settings.access_token_ttl} s); it is {settings.refresh_token_ttl} s."
            )
        return settings


def _secret(env: _Env) -> str:
    secret = env.optional("JWT_SECRET_KEY")
    if secret is None:
        raise SettingsError(
            f"JWT_SECRET_KEY is not set: set it to at least {MIN_SECRET_BYTES} random bytes, "
            f"e.g. the output of {HOW_TO_MAKE_A_KEY} (scripts/run keeps one for development)."
        )
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise SettingsError(
            f"JWT_SECRET_KEY is {len(secret.encode())} bytes long; it must be at least "
            f"{MIN_SECRET_BYTES} random bytes, e.g. the output of {HOW_TO_MAKE_A_KEY}."
        )
    published = hashlib.sha256(secret.encode()).hexdigest() in PUBLISHED_SECRET_SHA256
    if published or len(set(secret)) < MIN_SECRET_DISTINCT_CHARACTERS:
        raise SettingsError(
            "JWT_SECRET_KEY is a published or placeholder key that anyone could sign tokens "
            f"with; set it to random bytes, e.g. the output of {HOW_TO_MAKE_A_KEY}."
        )
    return secret


def _cookie_secure(env: _Env, app_env: str) -> bool:
    # Local development and the tests speak plain HTTP, where Secure cookies never come back.
    secure = env.flag("COOKIE_SECURE", app_env == "production")
    if not secure and app_env == "production":
        raise SettingsError(
            "COOKIE_SECURE=false is refused when APP_ENV=production (browsers would send "
            "session cookies over plain HTTP); unset it."
        )
    return secure


def database_url_from_env(environ: Mapping[str, str] | None = None) -> str:
    """DATABASE_URL alone, normalised as the app reads it (for migrations and tools).

    Raises:
        SettingsError: the URL is not a Postgres URL.
    """
    env = _Env(os.environ if environ is None else environ)
    return normalise_database_url(env.text("DATABASE_URL", Settings.database_url))


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


def _check_cluster_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "unix":
        raise SettingsError(
            "REDIS_CLUSTER=true needs REDIS_URL to name a cluster node over TCP, e.g. "
            "redis://10.0.0.1:6379/0; got a unix:// URL."
        )
    if parts.path.strip("/") not in ("", "0"):
        raise SettingsError(
            "REDIS_CLUSTER=true needs database 0 in REDIS_URL (a cluster has no other); "
            f"got {parts.path.strip('/')!r}."
        )


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
