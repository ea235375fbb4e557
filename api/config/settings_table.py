"""The one table of settings: variable, parser, default and meaning of every knob.

It drives `Settings.from_env` and `Settings.to_env` (api/config/settings.py), the README's
configuration table (`python -m scripts.readme_settings` writes it; a unit test compares)
and, through `to_env`, the end-to-end tests' server environment.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import urlsplit

from api.config.settings_parsers import (
    HOW_TO_MAKE_A_KEY,
    MIN_SECRET_BYTES,
    FernetKeys,
    Flag,
    KeyFile,
    KeyFiles,
    LinkBase,
    MailAddress,
    OneOf,
    Origins,
    Parser,
    PostgresUrl,
    Rate,
    RedisUrl,
    RoleNames,
    RolePermissionsJson,
    Seconds,
    SettingsError,
    SigningKey,
    SmtpUrl,
    Text,
    Whole,
)
from api.security.keys import KeySet

if TYPE_CHECKING:
    from api.config.settings import Settings

T = TypeVar("T")

ENVIRONMENTS = ("development", "test", "production")
ALGORITHMS = ("HS256", "RS256", "ES256", "EdDSA")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
WORKER_PROCESSES_DEFAULT = 2  # the Procfile's and scripts/run's ${WEB_CONCURRENCY:-2}


def _hash_threads(environ: Mapping[str, str]) -> int:
    # The cores shared out among the worker processes the Procfile starts.
    workers = environ.get("WEB_CONCURRENCY", "").strip()
    processes = int(workers) if workers.isdigit() and int(workers) > 0 else WORKER_PROCESSES_DEFAULT
    return max((os.cpu_count() or 1) // processes, 1)


# A backstop behind HASH_WAIT_BUDGET, which sheds first: at the OWASP argon2id cost (20-40
# ms of a core a check) 256 waiting per hashing thread are several seconds of queue.
HASH_QUEUE_PER_WORKER = 256


@dataclass(frozen=True)
class Derived(Generic[T]):
    """A default computed from the settings of the rows above, the environment or the machine."""

    # (the rows above, the environment) -> the default
    compute: Callable[[Mapping[str, Any], Mapping[str, str]], T]
    text: str  # how the README states it


@dataclass(frozen=True)
class Required:
    """No default: start-up stops when the variable is unset, with `hint` saying what to set.

    With `when`, only if `when` says so of the rows above; otherwise unset reads as None.
    """

    hint: str
    when: Callable[[Mapping[str, Any]], bool] | None = None
    text: str = "none: required"  # how the README states it


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One variable read into the `Settings` field of the same name in lower case."""

    variable: str
    parser: Parser[T]
    # Text read as if the variable held it; None: the field is None when unset.
    default: str | Derived[T] | Required | None
    meaning: str
    default_note: str = ""  # said after the default in the README, e.g. "30 days"
    # A rule across settings, run on the finished Settings: raise SettingsError to refuse.
    check: Callable[[Settings], None] | None = None

    @property
    def field(self) -> str:
        """The `Settings` attribute this variable fills."""
        return self.variable.lower()

    def read(self, environ: Mapping[str, str], above: Mapping[str, Any]) -> T | None:
        """This setting's value in `environ`; `above` holds the rows read before it.

        Raises:
            SettingsError: the value is malformed, or unset and required.
        """
        text = environ.get(self.variable, "").strip()
        if text:
            return self.parser.parse(self.variable, text)
        if isinstance(self.default, Derived):
            return self.default.compute(above, environ)
        if isinstance(self.default, Required):
            if self.default.when is None or self.default.when(above):
                raise SettingsError(f"{self.variable} is not set: {self.default.hint}")
            return None
        if self.default is None:
            return None
        return self.parser.parse(self.variable, self.default)

    def write(self, value: T | None) -> str:
        """The text that `read` turns back into `value`."""
        # None is written empty, which reads as unset and hides a value the process inherited.
        return "" if value is None else self.parser.render(value)

    def default_text(self) -> str:
        """The default as the README states it."""
        if isinstance(self.default, Derived):
            return self.default.text
        if isinstance(self.default, Required):
            return self.default.text
        text = "unset" if self.default is None else f"`{self.default}`"
        return f"{text} ({self.default_note})" if self.default_note else text


@dataclass(frozen=True)
class ReadElsewhere:
    """A variable documented with the settings but read by another program, not `Settings`."""

    variable: str
    default: str  # as the README states it
    meaning: str
    read_by: str

    def default_text(self) -> str:
        """The default as the README states it."""
        return self.default


def refresh_outlives_access(settings: Settings) -> None:
    """A refresh token must live at least as long as the access tokens it renews."""
    if settings.refresh_token_ttl < settings.access_token_ttl:
        raise SettingsError(
            "REFRESH_TOKEN_TTL must be at least ACCESS_TOKEN_TTL "
            f"({settings.access_token_ttl} s); it is {settings.refresh_token_ttl} s."
        )


def keys_load(settings: Settings) -> None:
    """The signing and verification keys exist, can be read, and fit their algorithms."""
    KeySet.from_settings(settings)


def secure_cookies_in_production(settings: Settings) -> None:
    """Production never sends session cookies without `Secure`."""
    if not settings.cookie_secure and settings.is_production:
        raise SettingsError(
            "COOKIE_SECURE=false is refused when APP_ENV=production (browsers would send "
            "session cookies over plain HTTP); unset it."
        )


def cluster_node_url(settings: Settings) -> None:
    """A Redis Cluster is reached over TCP, and has no database but 0."""
    if not settings.redis_cluster:
        return
    parts = urlsplit(settings.redis_url)
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


def https_links_in_production(settings: Settings) -> None:
    """Production never mails a link that travels over plain HTTP."""
    base = settings.public_link_base
    if base is not None and settings.is_production and not base.startswith("https://"):
        raise SettingsError(
            "PUBLIC_LINK_BASE must be an https:// URL when APP_ENV=production (its links carry "
            f"single-use tokens); got {base!r}."
        )


def hash_tags_intact(settings: Settings) -> None:
    """The key prefix must not carry braces: Redis Cluster would read them as a hash tag."""
    prefix = settings.redis_key_prefix
    if "{" in prefix or "}" in prefix or any(c.isspace() for c in prefix) or len(prefix) > 64:
        raise SettingsError(
            "REDIS_KEY_PREFIX must be at most 64 characters without braces or spaces "
            f"(braces would move every key to one Redis Cluster slot); got {prefix!r}."
        )


def second_factor_roles_exist(settings: Settings) -> None:
    """Every role that must use a second factor is one of ROLE_PERMISSIONS."""
    unknown = sorted(set(settings.mfa_required_roles) - set(settings.role_permissions))
    if unknown:
        raise SettingsError(
            f"MFA_REQUIRED_ROLES names {unknown[0]!r}, which is not a role of "
            f"ROLE_PERMISSIONS ({', '.join(sorted(settings.role_permissions))}); set it to "
            "the empty string for none."
        )


def _second_factor_roles(environ: Mapping[str, str]) -> tuple[str, ...]:
    # Set but empty means none: the empty string is how an operator turns the rule off.
    return () if "MFA_REQUIRED_ROLES" in environ else ("admin",)


# Adding a setting: one row here, plus a field of the same name in lower case on
# `Settings` (api/config/settings.py). Parsing, validation, the README's table
# (`python -m scripts.readme_settings`) and the e2e server's environment follow from it.
# Rows are read in order: a Derived default may use the rows above it.
TABLE: tuple[Setting[Any] | ReadElsewhere, ...] = (
    Setting(
        "APP_ENV",
        OneOf(ENVIRONMENTS),
        # Secure by default: a deploy that sets nothing runs as production.
        "production",
        "`development`, `test` or `production`; `scripts/run` sets `development`",
    ),
    Setting(
        "COOKIE_SECURE",
        Flag(),
        # Local development and the tests speak plain HTTP, where Secure cookies never come back.
        Derived(
            lambda above, _: above["app_env"] == "production",
            "`true`, but `false` when `APP_ENV` is `development` or `test`",
        ),
        "the cookies' `Secure` attribute; local development speaks plain HTTP, where browsers "
        "would not send Secure cookies back. `false` is refused in production",
        check=secure_cookies_in_production,
    ),
    Setting(
        "CORS_ALLOWED_ORIGINS",
        Origins(),
        # Closed by default: no origin but the API's own may read its answers.
        Derived(lambda _above, _environ: (), "empty: no CORS headers at all"),
        "comma-separated exact origins (`https://app.example.com`, no wildcard) whose browser "
        "pages may call the API with credentials (cookies): their requests get "
        "`Access-Control-Allow-Origin` and `-Credentials`, and their preflights a `204` "
        "(see [docs/api.md](docs/api.md#cors-browser-pages-on-another-origin)); any other "
        "origin gets no CORS header",
    ),
    Setting(
        "DATABASE_URL",
        PostgresUrl(),
        DEFAULT_DATABASE_URL,
        "`postgres://` or `postgresql://` (any driver suffix), normalised for asyncpg; "
        "`sslmode` becomes `ssl`",
    ),
    Setting(
        "REDIS_URL",
        RedisUrl(),
        DEFAULT_REDIS_URL,
        "`redis://`, `rediss://` or `unix://`, with a database index",
    ),
    Setting(
        "REDIS_KEY_PREFIX",
        Text(),
        Derived(lambda _above, _environ: "", "empty"),
        "put before every Redis key of the service, so several deployments (or test runs) can "
        "share one Redis; e.g. `auth-staging:`",
        check=hash_tags_intact,
    ),
    Setting(
        "REDIS_CLUSTER",
        Flag(),
        "false",
        "`true`: `REDIS_URL` names one node of a Redis Cluster (database 0, over TCP), the "
        "others are discovered; revocation, rate limits and `/readyz` all use the cluster. "
        "`REDIS_POOL_SIZE` then caps the commands in flight per worker, so at most that many "
        "connections per node (see [docs/scaling.md](docs/scaling.md))",
        check=cluster_node_url,
    ),
    Setting(
        "JWT_ALGORITHM",
        OneOf(ALGORITHMS),
        "HS256",
        "the algorithm tokens are signed with: `HS256` with `JWT_SECRET_KEY`; `RS256` (RSA, at "
        "least 2048 bits), `ES256` (P-256) or `EdDSA` (Ed25519) with `JWT_PRIVATE_KEY_FILE`, "
        "the public keys published at `/.well-known/jwks.json` (see Signing keys). Every key "
        "verifies only tokens of its own algorithm",
    ),
    Setting(
        "JWT_SECRET_KEY",
        SigningKey(),
        # Never given a default: no key in the source can ever sign a token.
        Required(
            f"set it to at least {MIN_SECRET_BYTES} random bytes, e.g. the output of "
            f"{HOW_TO_MAKE_A_KEY} (scripts/run keeps one for development), or sign with a key "
            "pair (JWT_ALGORITHM=ES256 and JWT_PRIVATE_KEY_FILE).",
            when=lambda above: above["jwt_algorithm"] == "HS256",
            text="none: required with `HS256`",
        ),
        "the HS256 signing key: at least 32 bytes of random text, e.g. "
        "`python3 -c 'import secrets; print(secrets.token_urlsafe(48))'`; placeholders "
        "(fewer than 8 different characters) and keys ever published in this repository are "
        "refused, in every environment and with every algorithm. `scripts/run` makes one for "
        "development",
    ),
    Setting(
        "JWT_PRIVATE_KEY_FILE",
        KeyFile(),
        None,
        "RS256, ES256, EdDSA: the PEM file of the private key tokens are signed with (keep it "
        "mode 0600); `flask --app api keys generate` makes one. A key of the wrong kind or "
        "size, a public key, or a file that can't be read stops the server",
    ),
    Setting(
        "JWT_PUBLIC_KEY_FILES",
        KeyFiles(),
        Derived(lambda _above, _environ: (), "none"),
        "comma-separated PEM files of older public keys whose tokens are still accepted (and "
        "published), after a rotation; each verifies with its own algorithm (RSA: RS256, P-256: "
        "ES256, Ed25519: EdDSA)",
        check=keys_load,
    ),
    Setting("JWT_ISSUER", Text(), None, "added to tokens as `iss` and required from them when set"),
    Setting(
        "JWT_AUDIENCE", Text(), None, "added to tokens as `aud` and required from them when set"
    ),
    Setting("ACCESS_TOKEN_TTL", Whole(1), "900", "seconds"),
    Setting(
        "REFRESH_TOKEN_TTL",
        Whole(1),
        "2592000",
        "seconds, at least `ACCESS_TOKEN_TTL`",
        default_note="30 days",
        check=refresh_outlives_access,
    ),
    Setting(
        "REFRESH_REUSE_GRACE",
        Whole(0),
        "10",
        "seconds a superseded refresh token may still be exchanged",
    ),
    Setting(
        "ROLE_PERMISSIONS",
        RolePermissionsJson(),
        '{"user": [], "admin": ["users:read", "users:write", "audit:read"]}',
        "JSON object: each role and the permissions its access tokens carry (`users:read`, "
        "`users:write`, `audit:read`). `user` and `admin` must be named; a role is 1-16 "
        "characters of `a-z0-9_.-`. A role found on a user in the database but not here "
        "stops the server at start-up",
    ),
    Setting(
        "MFA_REQUIRED_ROLES",
        RoleNames(),
        Derived(lambda _above, environ: _second_factor_roles(environ), "`admin`"),
        "comma-separated roles whose holders must use a second factor on every route that "
        "needs a permission: `403 mfa_enrollment_required` until they enrol, `401 "
        "mfa_required` while their token's `amr` lacks `otp` or `recovery`. Set it to the "
        "empty string for none (see Two-factor login)",
        check=second_factor_roles_exist,
    ),
    Setting("MFA_ISSUER", Text(), "Auth API", "the issuer authenticator apps show beside a code"),
    Setting(
        "MFA_ENCRYPTION_KEY",
        FernetKeys(),
        Derived(lambda _above, _environ: (), "unset"),
        "comma-separated Fernet keys that encrypt TOTP secrets at rest: the first encrypts, "
        "every one decrypts, so a new key goes first and an old one stays until `flask --app "
        "api mfa reencrypt` has rewritten every secret under the first (see Two-factor "
        "login). Unset: in `development` and `test` a key derived from the signing key; in "
        "production enrolment is refused with `503` until it is set",
    ),
    Setting(
        "MFA_TOKEN_TTL",
        Whole(30, 3600),
        "300",
        "seconds (30-3600) an `mfa_token` from a correct password stays usable for "
        "`POST /auth/mfa/verify`",
    ),
    Setting(
        "PASSWORD_MIN_LENGTH",
        Whole(1, 1024),
        "12",
        "characters, counted as sent: passwords are never trimmed or normalised",
    ),
    Setting(
        "MAX_BODY_BYTES",
        Whole(1024),
        "65536",
        "larger bodies answer `413 payload_too_large` with `Connection: close`, on every "
        "route; the rest of the body is read and dropped (up to 16 MiB, within "
        "`REQUEST_READ_TIMEOUT`) so the client sees the answer, then the connection closes",
    ),
    Setting(
        "REQUEST_READ_TIMEOUT",
        Whole(1, 3600),
        "30",
        "seconds (1-3600) a client may take to send a request body, and the longest silence "
        "on a connection while a request is due; then `408 request_timeout` with "
        "`Connection: close`, or the connection is closed. A request head must arrive within "
        "Hypercorn's keep-alive timeout (5 s)",
    ),
    Setting(
        "DRAIN_DELAY",
        Seconds(300, zero=True),
        "0",
        "seconds (0-300) a worker keeps accepting connections after the host is told to stop "
        "(SIGTERM), while `/readyz` answers 503, before it closes its listening socket and "
        "lets the requests in flight finish. Set it to the time your load balancer takes to "
        "take a host out (probe interval \N{MULTIPLICATION SIGN} failures needed): a "
        "connection the kernel has queued for a worker when it closes is reset",
    ),
    Setting(
        "ARGON2_MEMORY_KIB",
        Whole(8),
        "19456",
        "argon2id memory cost in KiB (OWASP minimum); hashes are upgraded at the next login "
        "when an argon2 cost changes",
    ),
    Setting("ARGON2_TIME_COST", Whole(1), "2", "argon2id passes (OWASP minimum)"),
    Setting("ARGON2_PARALLELISM", Whole(1), "1", "argon2id lanes (OWASP minimum)"),
    Setting(
        "HASH_WORKERS",
        Whole(1),
        Derived(
            lambda _, environ: _hash_threads(environ),
            "CPU count ÷ `WEB_CONCURRENCY`, at least 1",
        ),
        "threads per worker process that hash passwords, off the event loop. More hashing "
        "threads than cores make every check dearer (measured: 24 ms of CPU per argon2id "
        "verification with one thread per core, 36 ms with two)",
    ),
    Setting(
        "HASH_QUEUE_MAX",
        Whole(1),
        Derived(
            lambda above, _: HASH_QUEUE_PER_WORKER * above["hash_workers"],
            f"{HASH_QUEUE_PER_WORKER} \N{MULTIPLICATION SIGN} `HASH_WORKERS`",
        ),
        "password checks that may wait for a hashing thread, per worker process, at most; "
        "more are answered at once with `503 service_unavailable` and `Retry-After: 2`. A "
        "backstop: `HASH_WAIT_BUDGET` sheds first",
    ),
    Setting(
        "HASH_WAIT_BUDGET",
        Seconds(60),
        "2",
        "seconds (above 0, at most 60) a password check may expect to wait for a hashing "
        "thread: the checks served before it times the measured mean hashing time, over "
        "`HASH_WORKERS`. Beyond it a login is refused with `503 "
        "service_unavailable` and `Retry-After: 2`, before any other work, the answer held "
        "for the budget (clients that retry at once ask once per budget). Waiting checks "
        "are queued per client address (per-IP limit's key) and served round-robin, "
        "addresses that passed a password check in the last 24 hours first (docs/scaling.md)",
    ),
    Setting(
        "DATABASE_STATEMENT_CACHE_SIZE",
        Whole(0),
        "100",
        "prepared statements asyncpg (and SQLAlchemy over it) keep per connection; `0` behind "
        "a pooler in transaction mode such as PgBouncer before 1.21, which also gives every "
        "statement a unique name and runs single reads and writes inside a transaction (two "
        "more round trips each; outside one a pooler may split a statement across server "
        "connections) (see Deploying)",
    ),
    Setting(
        "DB_POOL_SIZE",
        Whole(1),
        "10",
        "Postgres connections per worker process, never more",
    ),
    Setting(
        "DB_POOL_TIMEOUT",
        Seconds(60),
        "5",
        "seconds (above 0, at most 60) to wait for a free Postgres connection, and for a new "
        "one to connect; then `503 service_unavailable`",
    ),
    Setting(
        "REDIS_POOL_SIZE",
        Whole(1),
        "20",
        "Redis connections per worker process, never more",
    ),
    Setting(
        "REDIS_TIMEOUT",
        Seconds(60),
        "2",
        "seconds (above 0, at most 60) to wait for a free Redis connection, for a new one to "
        "connect, and for each answer; then `503 service_unavailable` (rate limits count per "
        "process instead)",
    ),
    Setting(
        "REVOCATION_CACHE",
        Flag(),
        "false",
        "`true`: each worker remembers the revocation answers it read for access tokens and "
        "drops a user's when a revoking request publishes to Redis, so a valid token costs "
        "no Redis round trip; a token revoked on another worker or host is refused once the "
        "message arrives (measured in [docs/scaling.md](docs/scaling.md#revocation-cache)), "
        "not at once. Without the channel (lost, or unanswered PING) workers ask Redis every "
        "time. `false`: every request asks Redis",
    ),
    Setting(
        "REVOCATION_CACHE_MAX_AGE",
        Seconds(3600),
        "60",
        "seconds (above 0, at most 3600) a remembered revocation answer is used at most (and "
        "never past the token's `exp`); with `REVOCATION_CACHE`",
    ),
    Setting(
        "REVOCATION_CACHE_SIZE",
        Whole(1),
        "100000",
        "revocation answers each worker remembers at most, the oldest dropped first; with "
        "`REVOCATION_CACHE`",
    ),
    Setting(
        "DB_APPLICATION_NAME",
        Text(),
        "auth-api",
        "how connections name themselves to Postgres and Redis",
    ),
    Setting("LOG_LEVEL", OneOf(LOG_LEVELS), "INFO", "`DEBUG`, `INFO`, `WARNING` or `ERROR`"),
    Setting(
        "LOG_FORMAT",
        OneOf(LOG_FORMATS),
        Derived(
            lambda above, _: "json" if above["app_env"] == "production" else "text",
            "`json` in production, else `text`",
        ),
        "`text`, or `json`: one JSON object per line, and one line per security event with "
        "the facts of its audit row and the request id",
    ),
    ReadElsewhere(
        "PROMETHEUS_MULTIPROC_DIR",
        "a fresh private folder per server",
        "where the workers keep the metrics `/metrics` sums (prometheus-client's own "
        "variable). Unset: the master makes a new folder (mode 0700) in the temporary "
        "directory at start and removes it at exit. Set: that folder is used (created if "
        "missing) and kept; empty it between runs",
        read_by="`api/edge/metrics_folder.py` and prometheus-client",
    ),
    Setting(
        "ACCESS_LOG",
        Flag(),
        # The tests' servers answer thousands of requests each run; nobody reads those lines.
        Derived(
            lambda above, _: above["app_env"] != "test",
            "`true`, but `false` when `APP_ENV` is `test`",
        ),
        "one line per request on stderr (logger `api.access`, at `INFO` whatever `LOG_LEVEL` "
        "says): method, route template, status, duration in ms and client IP; never a "
        "header, cookie, body or query string (see "
        "[docs/deployment.md](docs/deployment.md#logs-and-the-docs-page))",
    ),
    Setting(
        "METRICS_ENABLED",
        Flag(),
        "true",
        "`false`: `GET /metrics` answers `404 not_found`",
    ),
    Setting(
        "METRICS_TOKEN",
        Text(),
        None,
        "when set, `GET /metrics` needs `Authorization: Bearer <this value>` (else `401` "
        "`token_missing` or `token_invalid`); e.g. "
        "`python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`",
    ),
    Setting(
        "OPENAPI_ENABLED",
        Flag(),
        "true",
        "`false`: `GET /openapi.json` (and so `/docs`) answers `404 not_found`",
    ),
    Setting(
        "DOCS_ENABLED",
        Flag(),
        # An interactive console for the API is for developers, not for the internet.
        Derived(
            lambda above, _: above["app_env"] == "development",
            "`true` when `APP_ENV` is `development`, else `false`",
        ),
        "`GET /docs`: the OpenAPI document in Swagger UI, served with its assets by the app "
        "(nothing from a CDN); needs `OPENAPI_ENABLED`",
    ),
    Setting(
        "SMTP_URL",
        SmtpUrl(),
        None,
        "where messages (verification, password reset, email change) are sent: "
        "`smtp://user:pass@host:587` (STARTTLS, required unless `?starttls=false`, which is "
        "refused with credentials) or `smtps://user:pass@host:465` (TLS). Unset: messages "
        "stay in the `outbox` table and each is logged at `INFO` without its link (see "
        "Recovering an account)",
    ),
    Setting(
        "MAIL_FROM",
        MailAddress(),
        "auth-api <no-reply@localhost>",
        "the `From` of every message, e.g. `Example <no-reply@example.com>`",
    ),
    Setting(
        "PUBLIC_LINK_BASE",
        LinkBase(),
        None,
        "the client page (or universal link) a message's link opens; the link is this URL "
        "with `#action=<verify-email|reset-password|confirm-email-change>&token=<token>` "
        "appended, so the token never reaches a web server's logs. Unset: messages carry the "
        "token as a code to paste. `https://` in production",
        check=https_links_in_production,
    ),
    Setting(
        "PASSWORD_RESET_TTL",
        Whole(60, 86400),
        "1800",
        "seconds a password-reset link works (60-86400)",
        default_note="30 minutes",
    ),
    Setting(
        "EMAIL_VERIFY_TTL",
        Whole(60, 30 * 86400),
        "172800",
        "seconds a verification or email-change link works",
        default_note="48 hours",
    ),
    Setting(
        "REQUIRE_VERIFIED_EMAIL",
        Flag(),
        "false",
        "`true`: a login with the right password of an account whose address is not "
        "verified answers `403 email_unverified`",
    ),
    Setting(
        "MAIL_SEND_IN_WORKERS",
        Flag(),
        "true",
        "the server's workers deliver the outbox (one of them at a time, under a Postgres "
        "advisory lock); `false` leaves it to `flask --app api send-mail`",
    ),
    Setting(
        "MAIL_MAX_ATTEMPTS",
        Whole(1, 100),
        "15",
        "delivery attempts per message before it is given up (`mail.failed`); retries back "
        "off from 1 s, doubling, to at most 5 minutes apart (about an hour in all)",
    ),
    Setting(
        "RATE_LIMITS_ENABLED",
        Flag(),
        "true",
        "`false` switches every rate limit off (load tests)",
    ),
    Setting(
        "LOGIN_RATE_LIMIT",
        Rate(),
        "30/minute",
        "failed logins per client IP (wrong password, unknown address, refused body, locked "
        "account); a successful login gives its attempt back, so thousands of users behind "
        "one carrier NAT can log in. Each login holds an attempt while it runs: at most this "
        "many logins from one IP are in progress at once",
    ),
    Setting(
        "REGISTER_RATE_LIMIT",
        Rate(),
        "1000/hour",
        "accounts created per client IP: each registration reserves one before any work and "
        "gives it back unless it answers 201, so mistakes (409, 422) cost nothing. Sized for "
        "an app launch behind a carrier NAT, where one IPv4 address serves thousands of "
        "subscribers",
    ),
    Setting(
        "REGISTER_ATTEMPT_LIMIT",
        Rate(),
        "60/hour",
        "failed registrations per client IP (`409`, `422`, `429` for too many accounts): "
        "bounds how many addresses one IP can test for an existing account; a registration "
        "answered 201 gives its attempt back",
    ),
    Setting(
        "LOGIN_FAILURE_LIMIT",
        Rate(),
        "5/15 minutes",
        "failed password checks per account from devices without its device token, whatever "
        "the IP and route (login, `POST /me/password`, `DELETE /me`); each check reserves an "
        "attempt before hashing and a correct password gives it back",
    ),
    Setting(
        "DEVICE_FAILURE_LIMIT",
        Rate(),
        "5/15 minutes",
        "failed logins per device token: a login that presents a valid device token of the "
        "account counts here instead of against `LOGIN_FAILURE_LIMIT`, so guesses from "
        "elsewhere never lock the owner's devices out",
    ),
    Setting(
        "DEVICE_TOKEN_TTL",
        Whole(1),
        "31536000",
        "seconds a device token stays valid (and the device cookie's `Max-Age`); every "
        "successful login issues a new one",
        default_note="365 days",
    ),
    Setting(
        "LOGIN_UNKNOWN_LIMIT",
        Rate(),
        "300/minute",
        "logins for addresses that have no account, across all IPs: bounds the hashing a "
        "guesser spread over many addresses can take from the known users (raise it with "
        "the number of servers)",
    ),
    Setting(
        "FORGOT_PASSWORD_IP_LIMIT",
        Rate(),
        "20/hour",
        "`POST /auth/password/forgot` requests per client IP",
    ),
    Setting(
        "FORGOT_PASSWORD_EMAIL_LIMIT",
        Rate(),
        "5/hour",
        "`POST /auth/password/forgot` requests per address, whether or not an account has it",
    ),
    Setting(
        "ACCOUNT_MAIL_LIMIT",
        Rate(),
        "5/hour",
        "messages a signed-in account may ask for (`POST /auth/email/verify-request`, "
        "`POST /me/email`)",
    ),
    Setting(
        "TRUSTED_PROXY_HOPS",
        Whole(0, 10),
        "0",
        "proxies (0-10) in front whose `X-Forwarded-For` entry is believed; `0` uses the "
        "socket's address. An entry that is not an IP address is ignored (the socket's "
        "address is used) and logged, truncated",
    ),
    Setting(
        "IPV6_RATE_LIMIT_PREFIX",
        Whole(1, 128),
        "64",
        "IPv6 clients are counted per network of this many bits by the per-IP limits (one "
        "subscriber usually holds a whole /64); `128` counts single addresses. Sessions "
        "record the full address; IPv4-mapped IPv6 addresses count as IPv4",
    ),
    Setting(
        "SESSION_RETENTION",
        Whole(0),
        "604800",
        "seconds a session's row is kept after it expired or was revoked (to look at recent "
        "sign-outs), then purged (see Maintenance)",
        default_note="7 days",
    ),
    Setting(
        "AUDIT_RETENTION_DAYS",
        Whole(1),
        "365",
        "days an audit event is kept, then purged with the sessions (see Maintenance)",
    ),
    Setting(
        "SESSION_PURGE_INTERVAL",
        Whole(0),
        "0",
        "seconds between purges run by the server itself; `0` leaves purging to "
        "`flask --app api purge`",
        default_note="off",
    ),
    ReadElsewhere(
        "HOST",
        "`127.0.0.1`; the Procfile binds `0.0.0.0`",
        "the address Hypercorn listens on",
        read_by="`scripts/run`",
    ),
    ReadElsewhere(
        "PORT",
        "`8000`; the Procfile requires it",
        "the port Hypercorn listens on",
        read_by="`scripts/run` and the Procfile",
    ),
    ReadElsewhere(
        "WEB_CONCURRENCY",
        "`2`",
        "worker processes",
        read_by="`scripts/run` and the Procfile",
    ),
)

SETTINGS: tuple[Setting[Any], ...] = tuple(row for row in TABLE if isinstance(row, Setting))


def setting(variable: str) -> Setting[Any]:
    """The row of `variable`.

    Raises:
        KeyError: no setting reads `variable`.
    """
    for row in SETTINGS:
        if row.variable == variable:
            return row
    raise KeyError(variable)


def markdown_table() -> str:
    """The README's configuration table, one row per variable, in the table's order."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for row in TABLE:
        meaning = row.meaning
        if isinstance(row, ReadElsewhere):
            meaning += f". Read by {row.read_by}, not by the app's settings"
        lines.append(f"| `{row.variable}` | {row.default_text()} | {meaning} |")
    return "\n".join(lines) + "\n"
