"""api.security.client_address: what counts as the client's IP, and its rate-limit bucket."""

from __future__ import annotations

from typing import Any

import pytest
from werkzeug.middleware.proxy_fix import ProxyFix

from api.security.client_address import (
    PROXY_FIX_ORIGINAL,
    ClientAddress,
    client_address,
    forwarded_client,
    parse_ip,
)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("192.0.2.1:8080", "192.0.2.1"),
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("fe80::1%eth0", "fe80::1"),
        ("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", "ffff:" * 7 + "ffff"),
    ],
)
def test_addresses_parse_to_their_canonical_form(text: str, parsed: str) -> None:
    assert str(parse_ip(text)) == parsed
    assert len(parsed) <= 45


@pytest.mark.parametrize(
    "text", ["", "unknown", "x" * 60, "1.2.3", "[::1]x443", "192.0.2.1:http", "::1]:80", None]
)
def test_anything_else_is_no_address(text: str | None) -> None:
    assert parse_ip(text) is None


def test_ipv6_clients_share_a_bucket_per_network_of_the_prefix() -> None:
    def key(text: str, prefix: int = 64) -> str:
        return ClientAddress(parse_ip(text)).limit_key(prefix)

    assert key("2001:db8:1:2:aaaa::1") == key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert key("2001:db8:1:3::1") != key("2001:db8:1:2::1")
    assert key("2001:db8:1:3::1", 48) == key("2001:db8:1:2::1", 48) == "2001:db8:1::/48"
    assert key("2001:db8::1", 128) == "2001:db8::1/128"
    assert key("192.0.2.1") == key("::ffff:192.0.2.1") == "192.0.2.1"
    assert ClientAddress(None).limit_key(64) == "unknown"


def test_an_unparsable_forwarded_entry_gives_way_to_the_socket_address() -> None:
    environ = {"REMOTE_ADDR": "garbage", PROXY_FIX_ORIGINAL: {"REMOTE_ADDR": "10.0.0.5"}}
    assert client_address(environ).stored == "10.0.0.5"


def test_a_parsable_forwarded_entry_is_the_client() -> None:
    environ = {"REMOTE_ADDR": "2001:db8::7", PROXY_FIX_ORIGINAL: {"REMOTE_ADDR": "10.0.0.5"}}
    assert client_address(environ).stored == "2001:db8::7"


def test_no_address_at_all_is_none() -> None:
    assert client_address({}).stored is None
    assert client_address({"REMOTE_ADDR": "unix-socket"}).stored is None


FORWARDED_FOR = [
    None,
    "",
    "198.51.100.7",
    "203.0.113.9, 198.51.100.7",
    "not-an-ip, 198.51.100.7",
    "198.51.100.7, not-an-ip",
    "10.0.0.1,203.0.113.9 , 2001:db8::1",
    '"quoted", [2001:db8::2]:443',
    "x" * 100,
]


@pytest.mark.parametrize("forwarded_for", FORWARDED_FOR)
@pytest.mark.parametrize("hops", [0, 1, 2, 3])
def test_forwarded_client_agrees_with_proxy_fix_and_client_address(
    forwarded_for: str | None, hops: int
) -> None:
    """The access log, written before Flask, names the client the routes see."""
    environ: dict[str, Any] = {"REMOTE_ADDR": "192.0.2.50"}
    if forwarded_for is not None:
        environ["HTTP_X_FORWARDED_FOR"] = forwarded_for
    seen: list[dict[str, Any]] = []

    def app(env: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(env)
        return []

    wrapped = ProxyFix(app, x_for=hops) if hops else app
    wrapped(dict(environ), lambda *_: None)
    expected = client_address(seen[0])
    assert forwarded_client("192.0.2.50", forwarded_for, hops) == expected
