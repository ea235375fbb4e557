"""How the settings table reads a variable's text, and writes a value back as text.

Each parser is told the variable's name so that its complaint names it: a bad value stops
start-up with one sentence saying what the variable should be.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Generic, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from limits import parse as parse_rate

from api.security.permissions import BUILT_IN_ROLES, KNOWN_PERMISSIONS, ROLE_NAME

T = TypeVar("T")

MIN_SECRET_BYTES = 32
# Fewer different characters than this is a placeholder ("changeme" * 4), not random bytes.
MIN_SECRET_DISTINCT_CHARACTERS = 8
# SHA-256 of keys published in this repository's history (the development default of
# the first version): anyone can sign tokens with them, so every environment refuses them.
PUBLISHED_SECRET_SHA256 = frozenset(
    {"92cee2a538cdc23d7d071934f42ea2454b3f19496039f5d2a89c6af60fa9cd8c"}
)
HOW_TO_MAKE_A_KEY = "`python3 -c 'import secrets; print(secrets.token_urlsafe(48))'`"


class SettingsError(ValueError):
    """A variable of the environment has a value the service cannot run with."""


class Parser(ABC, Generic[T]):
    """Turns a variable's (stripped, non-empty) text into a value, and a value back into text."""

    @abstractmethod
    def parse(self, variable: str, text: str) -> T:
        """The value `text` stands for.

        Raises:
            SettingsError: `text` is not a valid value of `variable`.
        """

    def render(self, value: T) -> str:
        """The text that `parse` reads back as `value`."""
        return str(value)


@dataclass(frozen=True)
class Text(Parser[str]):
    """Any text."""

    def parse(self, variable: str, text: str) -> str:
        return text


@dataclass(frozen=True)
class OneOf(Parser[str]):
    """One of a few words."""

    allowed: tuple[str, ...]

    def parse(self, variable: str, text: str) -> str:
        if text not in self.allowed:
            raise SettingsError(
                f"{variable} must be one of {', '.join(self.allowed)}; got {text!r}."
            )
        return text


@dataclass(frozen=True)
class Flag(Parser[bool]):
    """true/false, yes/no, on/off or 1/0."""

    def parse(self, variable: str, text: str) -> bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{variable} must be true or false; got {text!r}.")

    def render(self, value: bool) -> str:
        return "true" if value else "false"


@dataclass(frozen=True)
class Whole(Parser[int]):
    """A whole number within bounds."""

    minimum: int
    maximum: int | None = None

    def parse(self, variable: str, text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise SettingsError(f"{variable} must be a whole number; got {text!r}.") from None
        if value < self.minimum or (self.maximum is not None and value > self.maximum):
            upper = f" and at most {self.maximum}" if self.maximum is not None else ""
            raise SettingsError(f"{variable} must be at least {self.minimum}{upper}; got {value}.")
        return value


@dataclass(frozen=True)
class Seconds(Parser[float]):
    """A duration in seconds, more than 0 (or 0 itself, when `zero` means "none") and at
    most `maximum`, fractions allowed."""

    maximum: float
    zero: bool = False

    def parse(self, variable: str, text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        # Zero would make every wait fail at once; nan and inf never compare as bounded.
        if not (0 < value <= self.maximum or (self.zero and value == 0)):
            lowest = "0" if self.zero else "above 0"
            raise SettingsError(
                f"{variable} must be a number of seconds {lowest} and at most "
                f"{self.maximum:g}, such as 2 or 0.5; got {text!r}."
            )
        return value

    def render(self, value: float) -> str:
        return repr(value)


@dataclass(frozen=True)
class Rate(Parser[str]):
    """A rate the `limits` library parses: `30/minute`, `5 per 15 minutes`."""

    def parse(self, variable: str, text: str) -> str:
        try:
            parse_rate(text)
        except ValueError:
            raise SettingsError(
                f"{variable} must be a rate such as '30/minute' or '5 per 15 minutes'; "
                f"got {text!r}."
            ) from None
        return text


@dataclass(frozen=True)
class PostgresUrl(Parser[str]):
    """A Postgres URL, normalised for asyncpg."""

    def parse(self, variable: str, text: str) -> str:
        return normalise_database_url(text, variable)


@dataclass(frozen=True)
class RedisUrl(Parser[str]):
    """A redis://, rediss:// or unix:// URL."""

    def parse(self, variable: str, text: str) -> str:
        return validate_redis_url(text, variable)


@dataclass(frozen=True)
class SigningKey(Parser[str]):
    """A key to sign tokens with: long, random, and never one published in this repository."""

    def parse(self, variable: str, text: str) -> str:
        if len(text.encode()) < MIN_SECRET_BYTES:
            raise SettingsError(
                f"{variable} is {len(text.encode())} bytes long; it must be at least "
                f"{MIN_SECRET_BYTES} random bytes, e.g. the output of {HOW_TO_MAKE_A_KEY}."
            )
        published = hashlib.sha256(text.encode()).hexdigest() in PUBLISHED_SECRET_SHA256
        if published or len(set(text)) < MIN_SECRET_DISTINCT_CHARACTERS:
            raise SettingsError(
                f"{variable} is a published or placeholder key that anyone could sign tokens "
                f"with; set it to random bytes, e.g. the output of {HOW_TO_MAKE_A_KEY}."
            )
        return text


@dataclass(frozen=True)
class KeyFile(Parser[str]):
    """The path of a PEM key file (read, and its key checked, with the other key settings)."""

    def parse(self, variable: str, text: str) -> str:
        return text


@dataclass(frozen=True)
class KeyFiles(Parser[tuple[str, ...]]):
    """Comma-separated paths of PEM key files, in order."""

    def parse(self, variable: str, text: str) -> tuple[str, ...]:
        return tuple(path.strip() for path in text.split(",") if path.strip())

    def render(self, value: tuple[str, ...]) -> str:
        return ",".join(value)


@dataclass(frozen=True)
class Origins(Parser[tuple[str, ...]]):
    """Comma-separated exact web origins (`https://app.example.com`), in their serialised form."""

    def parse(self, variable: str, text: str) -> tuple[str, ...]:
        origins = [self._origin(variable, entry.strip()) for entry in text.split(",")]
        return tuple(dict.fromkeys(origin for origin in origins if origin))

    def render(self, value: tuple[str, ...]) -> str:
        return ",".join(value)

    @staticmethod
    def _origin(variable: str, entry: str) -> str:
        if not entry:
            return ""
        # A wildcard with credentials would hand every site the user's cookies.
        example = "e.g. https://app.example.com,http://localhost:5173"
        if "*" in entry or entry == "null":
            raise SettingsError(
                f"{variable} takes exact origins, never {entry!r} ({example}); list each origin."
            )
        parts = urlsplit(entry)
        try:
            port = parts.port
        except ValueError:
            port = -1
        if (
            parts.scheme.lower() not in ("http", "https")
            or not parts.hostname
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
            or parts.username is not None
            or port == -1
        ):
            raise SettingsError(
                f"{variable} takes origins: scheme, host and optional port, no path "
                f"({example}); got {entry!r}."
            )
        # The form a browser sends in `Origin`: lower case, the scheme's default port left out.
        scheme = parts.scheme.lower()
        default = {"http": 80, "https": 443}[scheme]
        netloc = parts.netloc.lower() if port not in (None, default) else parts.hostname.lower()
        if ":" in parts.hostname and port in (None, default):
            netloc = f"[{parts.hostname.lower()}]"
        return f"{scheme}://{netloc}"


def normalise_database_url(url: str, variable: str = "DATABASE_URL") -> str:
    """Rewrite a platform's Postgres URL (postgres://, postgresql+psycopg2://...) for asyncpg.

    Raises:
        SettingsError: the URL is not a Postgres URL.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in ("postgres", "postgresql") or not parts.netloc:
        raise SettingsError(
            f"{variable} must be a Postgres URL such as "
            "postgresql://user:password@host:5432/dbname; got scheme "
            f"{parts.scheme or '(none)'!r}."
        )
    # asyncpg spells libpq's `sslmode` as `ssl`.
    query = [("ssl", v) if k == "sslmode" else (k, v) for k, v in parse_qsl(parts.query)]
    return urlunsplit(("postgresql+asyncpg", parts.netloc, parts.path, urlencode(query), ""))


def validate_redis_url(url: str, variable: str = "REDIS_URL") -> str:
    """Accept redis://, rediss:// and unix:// URLs, with an optional database index.

    Raises:
        SettingsError: another scheme, or a database index that is not a number.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise SettingsError(
            f"{variable} must start with redis://, rediss:// or unix://, e.g. "
            f"redis://127.0.0.1:6379/0; got scheme {parts.scheme or '(none)'!r}."
        )
    index = parts.path.strip("/")
    if parts.scheme != "unix" and index and not index.isdigit():
        raise SettingsError(f"{variable}'s database index must be a number; got {index!r}.")
    return url


@dataclass(frozen=True)
class RolePermissionsJson(Parser[dict[str, tuple[str, ...]]]):
    """A JSON object mapping each role to the list of permissions it grants."""

    def parse(self, variable: str, text: str) -> dict[str, tuple[str, ...]]:
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if not isinstance(data, dict) or not all(
            isinstance(v, list) and all(isinstance(p, str) for p in v) for v in data.values()
        ):
            raise SettingsError(
                f"{variable} must be a JSON object of role to list of permissions, e.g. "
                '{"user": [], "admin": ["users:read", "users:write", "audit:read"]}.'
            )
        for role in BUILT_IN_ROLES:
            if role not in data:
                raise SettingsError(f"{variable} must name the role {role!r} (it may grant []).")
        for role, permissions in data.items():
            if not ROLE_NAME.fullmatch(role):
                raise SettingsError(
                    f"{variable} names the role {role!r}: a role is 1-16 characters of a-z, "
                    "0-9, '_', '.' or '-', starting with a letter."
                )
            unknown = sorted(set(permissions) - KNOWN_PERMISSIONS)
            if unknown:
                raise SettingsError(
                    f"{variable} gives {role!r} the unknown permission {unknown[0]!r}; known: "
                    f"{', '.join(sorted(KNOWN_PERMISSIONS))}."
                )
        return {role: tuple(sorted(set(permissions))) for role, permissions in data.items()}

    def render(self, value: dict[str, tuple[str, ...]]) -> str:
        return json.dumps({role: list(p) for role, p in value.items()}, separators=(",", ":"))


@dataclass(frozen=True)
class RoleNames(Parser[tuple[str, ...]]):
    """Comma-separated role names (each checked against ROLE_PERMISSIONS with the others)."""

    def parse(self, variable: str, text: str) -> tuple[str, ...]:
        roles = tuple(dict.fromkeys(role.strip() for role in text.split(",") if role.strip()))
        for role in roles:
            if not ROLE_NAME.fullmatch(role):
                raise SettingsError(
                    f"{variable} names the role {role!r}: a role is 1-16 characters of a-z, "
                    "0-9, '_', '.' or '-', starting with a letter."
                )
        return roles

    def render(self, value: tuple[str, ...]) -> str:
        return ",".join(value)


HOW_TO_MAKE_A_FERNET_KEY = (
    "python3 -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)


@dataclass(frozen=True)
class FernetKeys(Parser[tuple[str, ...]]):
    """Comma-separated Fernet keys (32 bytes, URL-safe base64), the one that encrypts first."""

    def parse(self, variable: str, text: str) -> tuple[str, ...]:
        keys = tuple(key.strip() for key in text.split(",") if key.strip())
        for position, key in enumerate(keys, start=1):
            try:
                decoded = base64.urlsafe_b64decode(key.encode("ascii"))
            except (ValueError, UnicodeEncodeError):
                decoded = b""
            if len(decoded) != 32:
                # Never the key itself in the message: it may be a real one with a typo.
                raise SettingsError(
                    f"{variable}'s key {position} is not a Fernet key (32 bytes in URL-safe "
                    f"base64); make one with {HOW_TO_MAKE_A_FERNET_KEY}."
                )
        return keys

    def render(self, value: tuple[str, ...]) -> str:
        return ",".join(value)


class SmtpUrl(Parser[str]):
    """`smtp://[user:pass@]host[:port][?starttls=false]` (STARTTLS unless switched off) or
    `smtps://…` (TLS from the first byte); credentials never cross an unencrypted connection."""

    def parse(self, variable: str, text: str) -> str:
        parts = urlsplit(text)
        shape = (
            "smtp://user:pass@host:587 (STARTTLS), smtps://user:pass@host:465 (TLS), or "
            "smtp://host:25?starttls=false for a local relay without credentials"
        )
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise SettingsError(f"{variable} must look like {shape}; got a {parts.scheme!r} URL.")
        try:
            parts.port  # noqa: B018 (urlsplit checks the port only when asked)
        except ValueError:
            raise SettingsError(f"{variable} has a port that is not a number.") from None
        query = dict(parse_qsl(parts.query))
        starttls = query.pop("starttls", "true").lower()
        if starttls not in ("true", "false") or query:
            raise SettingsError(
                f"{variable} takes one query parameter, starttls=true|false; got {parts.query!r}."
            )
        if parts.scheme == "smtp" and starttls == "false" and parts.username:
            raise SettingsError(
                f"{variable} has credentials but starttls=false: they would cross the network "
                "unencrypted; use STARTTLS (the default) or smtps://."
            )
        return text


@dataclass(frozen=True)
class LinkBase(Parser[str]):
    """An absolute http(s) URL without a fragment: the page a message's link opens."""

    def parse(self, variable: str, text: str) -> str:
        parts = urlsplit(text)
        if parts.scheme not in ("https", "http") or not parts.netloc or parts.fragment:
            raise SettingsError(
                f"{variable} must be an absolute https:// URL without a fragment, e.g. "
                f"https://app.example.com/account; got {text!r}."
            )
        return text


@dataclass(frozen=True)
class MailAddress(Parser[str]):
    """An address for a From header: `noreply@example.com` or `Name <noreply@example.com>`."""

    def parse(self, variable: str, text: str) -> str:
        _, address = parseaddr(text)
        local, _, domain = address.rpartition("@")
        if not local or not domain or any(c in text for c in "\r\n"):
            raise SettingsError(
                f"{variable} must be an address such as 'Example <noreply@example.com>'; "
                f"got {text!r}."
            )
        return text
