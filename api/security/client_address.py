"""The client's address: parsed as an IP, never used as free-form text.

With TRUSTED_PROXY_HOPS set, werkzeug's ProxyFix puts the trusted X-Forwarded-For entry
in REMOTE_ADDR, whatever it says; it is only believed when it parses as an IP address.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, IPv6Network, ip_address
from typing import Any

from werkzeug.http import parse_list_header

logger = logging.getLogger(__name__)

IPAddress = IPv4Address | IPv6Address

# ProxyFix keeps the values it replaced under this environ key.
PROXY_FIX_ORIGINAL = "werkzeug.proxy_fix.orig"
# How much of an unparsable entry reaches the log: enough to recognise, bounded.
LOGGED_CHARS = 64
UNKNOWN = "unknown"


@dataclass(frozen=True)
class ClientAddress:
    """Where a request comes from: an IP address, or None when there is none to be had."""

    ip: IPAddress | None

    @property
    def stored(self) -> str | None:
        """The full address as recorded on a session (at most 39 characters)."""
        return None if self.ip is None else str(self.ip)

    def limit_key(self, ipv6_prefix: int) -> str:
        """The rate-limit bucket: an IPv4 address, or the IPv6 network of `ipv6_prefix` bits.

        One IPv6 subscriber usually holds a whole /64, so counting single IPv6 addresses
        would give each client unlimited buckets.
        """
        if self.ip is None:
            return UNKNOWN
        if isinstance(self.ip, IPv6Address):
            return str(IPv6Network((self.ip, ipv6_prefix), strict=False))
        return str(self.ip)


def client_address(environ: Mapping[str, Any]) -> ClientAddress:
    """The request's client: REMOTE_ADDR when it is an IP, else the socket's own address.

    A forwarded entry that is not an IP address is logged (truncated) and ignored.
    """
    remote = environ.get("REMOTE_ADDR")
    ip = parse_ip(remote)
    if ip is not None:
        return ClientAddress(ip)
    original: Mapping[str, Any] = environ.get(PROXY_FIX_ORIGINAL) or {}
    socket_address = original.get("REMOTE_ADDR", remote)
    if socket_address != remote:
        _log_unusable(remote)
    return ClientAddress(parse_ip(socket_address))


def _log_unusable(entry: object) -> None:
    logger.warning(
        "X-Forwarded-For entry %r is not an IP address; using the socket's address",
        str(entry)[:LOGGED_CHARS],
    )


def forwarded_client(
    socket_address: str | None,
    forwarded_for: str | None,
    trusted_proxy_hops: int,
    *,
    logged: bool = False,
) -> ClientAddress:
    """The client `client_address` finds behind ProxyFix(x_for=trusted_proxy_hops).

    For what reads a request before Flask does (the ASGI bridge's access log, the lanes):
    the X-Forwarded-For entry `trusted_proxy_hops` from the right, when there are that many
    and it is an IP address, else the socket's address. `logged`: an unusable entry is
    logged as `client_address` logs it (by the one reader that stands in for Flask's).
    """
    entries = parse_list_header(forwarded_for) if trusted_proxy_hops and forwarded_for else []
    if len(entries) >= trusted_proxy_hops > 0:
        entry = entries[-trusted_proxy_hops]
        ip = parse_ip(entry)
        if ip is not None:
            return ClientAddress(ip)
        if logged and entry != socket_address:
            _log_unusable(entry)
    return ClientAddress(parse_ip(socket_address))


def scope_client(
    scope: Mapping[str, Any], trusted_proxy_hops: int, *, logged: bool = False
) -> ClientAddress:
    """`forwarded_client` of an ASGI request's scope (repeated X-Forwarded-For headers
    read as one list, as a proxy appending to them means)."""
    client = scope.get("client")
    forwarded = b",".join(
        value for name, value in scope.get("headers", ()) if name == b"x-forwarded-for"
    )
    return forwarded_client(
        client[0] if client else None,
        forwarded.decode("latin-1") or None,
        trusted_proxy_hops,
        logged=logged,
    )


def parse_ip(text: object) -> IPAddress | None:
    """`text` as an IP address, else None.

    IPv4-mapped IPv6 addresses become IPv4 (the same client either way), an IPv6 zone is
    dropped, and a port (`1.2.3.4:80`, `[2001:db8::1]:443`) is ignored.
    """
    if not isinstance(text, str):
        return None
    for candidate in (text, _without_port(text)):
        try:
            ip = ip_address(candidate)
        except ValueError:
            continue
        if isinstance(ip, IPv6Address):
            return ip.ipv4_mapped or IPv6Address(int(ip))
        return ip
    return None


def _without_port(text: str) -> str:
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        has_port = rest.startswith(":") and rest[1:].isdigit()
        return host if bracket and (not rest or has_port) else text
    host, colon, port = text.partition(":")
    return host if colon and port.isdigit() else text
