"""Over HTTP against the real 2-worker server: old-password logins and refreshes racing a
password change, and logins racing DELETE /me, yield nothing accepted after the change
answered, and never a 500.

Each round opens three sessions, then fires logins (at random moments over the time the
change takes) and refreshes of the other sessions together with the change; once it has
answered, every token the racers got is presented to /me, /auth/verify and /auth/refresh.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

import asyncpg
import httpx

from tests.e2e.conftest import PASSWORD, Users

ROUNDS = 10
LOGINS = 5
SPREAD = 0.08
Change = Callable[[httpx.AsyncClient, dict[str, str]], Awaitable[httpx.Response]]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _login(http: httpx.AsyncClient, email: str) -> httpx.Response:
    await asyncio.sleep(random.uniform(0, SPREAD))
    return await http.post("/auth/login", json={"email": email, "password": PASSWORD})


async def _accepted(http: httpx.AsyncClient, pair: dict[str, str]) -> int:
    access, refresh = _bearer(pair["access_token"]), _bearer(pair["refresh_token"])
    verified = await http.get("/auth/verify", headers=access)
    seen = await http.get("/me", headers=access)
    refreshed = await http.post("/auth/refresh", headers=refresh)
    return (
        (verified.status_code == 204) + (seen.status_code == 200) + (refreshed.status_code == 200)
    )


async def _race(
    http: httpx.AsyncClient, users: Users, change: Change, pg: asyncpg.Connection
) -> tuple[int, int, list[int]]:
    """(tokens the racers got, survivors, racer statuses) over ROUNDS rounds."""
    tokens = survivors = 0
    statuses: list[int] = []
    ids: list[str] = []
    try:
        for _ in range(ROUNDS):
            email = await users.register(http)
            sessions = [await users.login(http, email) for _ in range(3)]
            me = await http.get("/me", headers=_bearer(sessions[0]["access_token"]))
            ids.append(me.json()["id"])
            *racers, answer = await asyncio.gather(
                *(_login(http, email) for _ in range(LOGINS)),
                *(
                    http.post("/auth/refresh", headers=_bearer(s["refresh_token"]))
                    for s in sessions[1:]
                ),
                change(http, sessions[0]),
            )
            assert answer.status_code == 204, answer.text
            statuses += [r.status_code for r in racers]
            pairs = [r.json() for r in racers if r.status_code == 200]
            tokens += len(pairs)
            survivors += sum(await asyncio.gather(*(_accepted(http, p) for p in pairs)))
    finally:
        # A deleted account's events: the users fixture finds no user to take them with.
        await pg.execute("DELETE FROM audit_events WHERE user_id = ANY($1::uuid[])", ids)
    return tokens, survivors, statuses


async def test_no_old_password_login_or_refresh_outlives_a_password_change(
    http: httpx.AsyncClient, users: Users, pg: asyncpg.Connection
) -> None:
    async def change_password(http: httpx.AsyncClient, session: dict[str, str]) -> httpx.Response:
        return await http.post(
            "/me/password",
            headers=_bearer(session["access_token"]),
            json={"current_password": PASSWORD, "new_password": "another long passphrase"},
        )

    tokens, survivors, statuses = await _race(http, users, change_password, pg)
    print(f"\npassword change over HTTP: survivors {survivors} of {tokens} racing tokens")
    assert survivors == 0
    assert set(statuses) <= {200, 401}


async def test_logins_racing_account_deletion_get_401_or_a_token_that_dies_with_it(
    http: httpx.AsyncClient, users: Users, pg: asyncpg.Connection
) -> None:
    async def delete_me(http: httpx.AsyncClient, session: dict[str, str]) -> httpx.Response:
        return await http.request(
            "DELETE", "/me", headers=_bearer(session["access_token"]), json={"password": PASSWORD}
        )

    tokens, survivors, statuses = await _race(http, users, delete_me, pg)
    counted = {s: statuses.count(s) for s in sorted(set(statuses))}
    print(f"\nDELETE /me over HTTP: survivors {survivors} of {tokens}; racer statuses {counted}")
    assert survivors == 0
    assert set(statuses) <= {200, 401}
