"""Rotating the signing key across real server restarts, the way docs/deployment.md says,
and outsiders verifying the tokens with nothing but the published JWK Set.

1. The server signs with key A. 2. Restarted with a new key B signing and A's public
half in JWT_PUBLIC_KEY_FILES: A's access and refresh tokens keep working, new tokens
name B, and independent JOSE libraries verify both from the JWKS. 3. Restarted without
A: A's tokens are token_invalid, for the server and for the outside libraries alike.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.config.settings import Settings
from tests.e2e.conftest import Users
from tests.e2e.outside_verifiers import (
    node_jose_folder,
    verify_with_joserfc,
    verify_with_node_jose,
)
from tests.e2e.server import ROOT, Server, settings_env
from tests.signing_keys import header_of

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def node_jose() -> Path:
    folder = node_jose_folder()
    if folder is None:
        pytest.skip("node is not installed: the Node `jose` half of the interoperability check")
    return folder


def generate(algorithm: str, path: Path) -> str:
    """`flask --app api keys generate`, as the operator runs it; the kid it prints."""
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "flask",
            "--app",
            "api",
            "keys",
            "generate",
            "--algorithm",
            algorithm,
            "--out",
            str(path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return made.stdout.strip()


def public_half(private: Path) -> Path:
    """The documented `openssl pkey -pubout` step."""
    public = private.with_suffix(".pub.pem")
    subprocess.run(
        ["openssl", "pkey", "-in", str(private), "-pubout", "-out", str(public)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return public


class Servers:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.current: Server | None = None

    def start(self, algorithm: str, signing: Path, *older: Path) -> Server:
        self.stop()
        settings = replace(
            self.settings,
            jwt_algorithm=algorithm,
            jwt_private_key_file=str(signing),
            jwt_public_key_files=tuple(str(p) for p in older),
        )
        self.current = Server(settings_env(settings), workers=2)
        return self.current

    def stop(self) -> None:
        if self.current is not None:
            self.current.stop()
            self.current = None


@pytest.fixture
def servers(e2e_settings: Settings) -> Iterator[Servers]:
    servers = Servers(e2e_settings)
    yield servers
    servers.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def statuses(http: httpx.AsyncClient, tokens: list[str], rounds: int = 5) -> list[int]:
    """Each token on /auth/verify (the lane) and /me (Flask), `rounds` times, all at once."""
    calls = [(route, t) for _ in range(rounds) for t in tokens for route in ("/auth/verify", "/me")]
    answers = await asyncio.gather(*(http.get(r, headers=bearer(t)) for r, t in calls))
    return [a.status_code for a in answers]


def outsiders(jwks: dict[str, Any], tokens: list[str], node: Path) -> dict[str, list[bool]]:
    return {
        "joserfc": verify_with_joserfc(jwks, tokens),
        "node jose": verify_with_node_jose(node, jwks, tokens),
    }


@pytest.mark.parametrize(
    ("old_algorithm", "new_algorithm"), [("ES256", "ES256"), ("RS256", "EdDSA")]
)
async def test_rotation_keeps_everyone_signed_in_until_the_old_key_is_dropped(
    servers: Servers,
    users: Users,
    node_jose: Path,
    tmp_path: Path,
    old_algorithm: str,
    new_algorithm: str,
) -> None:
    old_private = tmp_path / "keys" / "old.pem"
    old_kid = generate(old_algorithm, old_private)

    # 1. Key A signs.
    server = servers.start(old_algorithm, old_private)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        email = await users.register(http)
        first = await users.login(http, email)
        second = await users.login(http, email)  # its refresh token waits for step 3
    assert header_of(first["access_token"])["kid"] == old_kid
    assert header_of(first["refresh_token"])["kid"] == old_kid

    # 2. Key B signs, A still verifies.
    new_private = tmp_path / "keys" / "new.pem"
    new_kid = generate(new_algorithm, new_private)
    server = servers.start(new_algorithm, new_private, public_half(old_private))
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        jwks = (await http.get("/.well-known/jwks.json")).json()
        assert [(k["kid"], k["alg"]) for k in jwks["keys"]] == [
            (new_kid, new_algorithm),
            (old_kid, old_algorithm),
        ]
        refreshed = await http.post("/auth/refresh", headers=bearer(first["refresh_token"]))
        assert refreshed.status_code == 200, refreshed.text
        renewed = refreshed.json()
        assert header_of(renewed["access_token"])["kid"] == new_kid
        assert header_of(renewed["refresh_token"])["kid"] == new_kid
        third = await users.login(http, email)
        both = [first["access_token"], renewed["access_token"], third["access_token"]]
        seen = await statuses(http, both)
        by_outsiders = outsiders(jwks, both, node_jose)
    accepted = sum(s in (200, 204) for s in seen)
    print(
        f"{old_algorithm}->{new_algorithm}, both keys: accepted {accepted} of {len(seen)}; "
        f"outsiders {by_outsiders}"
    )
    assert all(s in (200, 204) for s in seen), seen
    assert by_outsiders == {"joserfc": [True] * 3, "node jose": [True] * 3}

    # 3. A dropped: its tokens are refused by the server and by the outsiders.
    server = servers.start(new_algorithm, new_private)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        jwks_after = (await http.get("/.well-known/jwks.json")).json()
        assert [k["kid"] for k in jwks_after["keys"]] == [new_kid]
        old_seen = await statuses(http, [first["access_token"], second["access_token"]])
        new_seen = await statuses(http, [renewed["access_token"], third["access_token"]])
        old_refresh = await http.post("/auth/refresh", headers=bearer(second["refresh_token"]))
        new_refresh = await http.post("/auth/refresh", headers=bearer(third["refresh_token"]))
        codes = {(await http.get("/me", headers=bearer(first["access_token"]))).json()["code"]}
        after = outsiders(jwks_after, [first["access_token"], renewed["access_token"]], node_jose)
    print(
        f"{old_algorithm}->{new_algorithm}, old key dropped: old tokens refused "
        f"{sum(s == 401 for s in old_seen)} of {len(old_seen)}, new accepted "
        f"{sum(s in (200, 204) for s in new_seen)} of {len(new_seen)}; outsiders {after}"
    )
    assert old_seen == [401] * len(old_seen) and codes == {"token_invalid"}
    assert all(s in (200, 204) for s in new_seen), new_seen
    assert (old_refresh.status_code, old_refresh.json()["code"]) == (401, "token_invalid")
    assert new_refresh.status_code == 200, new_refresh.text
    assert after == {"joserfc": [False, True], "node jose": [False, True]}
