"""Nothing outlives a revocation that ran at the same moment as refreshes, over HTTP.

Each round opens three sessions, fires six refreshes (two per session, so one of each
pair rotates and the other goes through the grace window) together with the
operation, then presents every token those refreshes returned: once the operation
has answered, none may be accepted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx

from tests.e2e.conftest import PASSWORD, Users

ROUNDS = 15
Operation = Callable[[httpx.AsyncClient, dict[str, str]], Awaitable[httpx.Response]]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _refresh(http: httpx.AsyncClient, refresh_token: str) -> httpx.Response:
    return await http.post("/auth/refresh", headers=_bearer(refresh_token))


async def _survivors(http: httpx.AsyncClient, returned: list[dict[str, str]]) -> int:
    """How many of the returned access and refresh tokens are still accepted."""
    verified = await asyncio.gather(
        *(http.get("/auth/verify", headers=_bearer(t["access_token"])) for t in returned)
    )
    seen = await asyncio.gather(
        *(http.get("/me", headers=_bearer(t["access_token"])) for t in returned)
    )
    refreshed = await asyncio.gather(*(_refresh(http, t["refresh_token"]) for t in returned))
    return (
        sum(r.status_code == 204 for r in verified)
        + sum(r.status_code == 200 for r in seen)
        + sum(r.status_code == 200 for r in refreshed)
    )


async def _race(
    http: httpx.AsyncClient, users: Users, operation: Operation, *, spare_first: bool = False
) -> tuple[int, int]:
    """Rounds of refreshes racing `operation`; (tokens the refreshes returned, survivors)."""
    returned_total = survivors = 0
    for _ in range(ROUNDS):
        email = await users.register(http)
        sessions = [await users.login(http, email) for _ in range(3)]
        raced = sessions[1:] if spare_first else sessions
        results = await asyncio.gather(
            *(_refresh(http, s["refresh_token"]) for s in raced for _ in range(2)),
            operation(http, sessions[0]),
        )
        *refreshes, answer = results
        assert answer.status_code == 204, answer.text
        returned = [r.json() for r in refreshes if r.status_code == 200]
        assert all(r.status_code in (200, 401) for r in refreshes)
        returned_total += len(returned)
        survivors += await _survivors(http, returned)
    return returned_total, survivors


async def test_no_token_from_a_concurrent_refresh_outlives_logout_all(
    http: httpx.AsyncClient, users: Users
) -> None:
    async def logout_all(http: httpx.AsyncClient, session: dict[str, str]) -> httpx.Response:
        return await http.post("/auth/logout-all", headers=_bearer(session["access_token"]))

    returned, survivors = await _race(http, users, logout_all)
    print(f"logout-all: survivors {survivors} of {returned} tokens returned by racing refreshes")
    assert survivors == 0


async def test_no_token_from_a_concurrent_refresh_outlives_account_deletion(
    http: httpx.AsyncClient, users: Users
) -> None:
    async def delete_me(http: httpx.AsyncClient, session: dict[str, str]) -> httpx.Response:
        return await http.request(
            "DELETE", "/me", headers=_bearer(session["access_token"]), json={"password": PASSWORD}
        )

    returned, survivors = await _race(http, users, delete_me)
    print(f"DELETE /me: survivors {survivors} of {returned} tokens returned by racing refreshes")
    assert survivors == 0


async def test_no_token_of_another_session_outlives_a_password_change(
    http: httpx.AsyncClient, users: Users
) -> None:
    async def change_password(http: httpx.AsyncClient, session: dict[str, str]) -> httpx.Response:
        return await http.post(
            "/me/password",
            headers=_bearer(session["access_token"]),
            json={"current_password": PASSWORD, "new_password": "another long passphrase"},
        )

    returned, survivors = await _race(http, users, change_password, spare_first=True)
    print(f"password change: survivors {survivors} of {returned} tokens of other sessions")
    assert survivors == 0
