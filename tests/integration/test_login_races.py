"""Logins and refreshes racing a change to the account (demotion, password change, disable,
deletion, sign-out everywhere): none may yield a token accepted after the change answered.

Each round gives a user sessions, then fires several logins (spread over a few
milliseconds) and refreshes of those sessions together with the change. Once the
change has answered, every token the racers got is presented to /me, /auth/verify and
/auth/refresh, and what is still accepted that should not be is counted as a survivor.
Writes commit (no rolled-back transaction), so the racers use their own connections
and really meet in Postgres.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import pytest

from api.config.settings import Settings
from tests.integration.admin_helpers import random_email, role_of, set_role
from tests.integration.conftest import Harness, bearer, start_harness, stop_harness

PASSWORD = "a long enough passphrase"
NEW_PASSWORD = "another long enough passphrase"
ROUNDS = 12
LOGINS = 5
SESSIONS = 3
# Logins start at random moments over this long, about as long as the change takes: one
# that checks a password (changing it, deleting the account), or one that does not.
SLOW = 0.04
FAST = 0.015


@dataclass
class Tally:
    """What the racers got over every round, and how many of their tokens outlived the change."""

    tokens: int = 0
    survivors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)

    def saw(self, response: httpx.Response) -> None:
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1


@dataclass
class Round:
    harness: Harness
    root: str
    email: str
    user_id: str
    # Access and refresh tokens of the user's sessions, opened before the race.
    sessions: list[dict[str, Any]]


Change = Callable[[Round], Awaitable[httpx.Response]]
# Whether a pair of tokens a racer got must be dead once the change has answered, given
# whether a login (not a refresh) got it and whether its access token still verifies.
MustBeDead = Callable[[dict[str, Any], bool, bool], bool]


@pytest.fixture
async def committing(settings: Settings) -> AsyncIterator[tuple[Harness, list[str]]]:
    # A password check that takes a while, as in production: the window between a login's
    # read and its session is what a change must not fall into unnoticed.
    _, harness = await start_harness(replace(settings, argon2_memory_kib=8192))
    emails: list[str] = []
    try:
        async with harness.client:
            yield harness, emails
    finally:
        await stop_harness(harness, *emails)


async def _login(client: httpx.AsyncClient, email: str, delay: float) -> httpx.Response:
    await asyncio.sleep(delay)
    return await client.post("/auth/login", json={"email": email, "password": PASSWORD})


async def _new_round(harness: Harness, emails: list[str], root: str, *, admin: bool) -> Round:
    email = random_email()
    emails.append(email)
    user = await harness.register(email)
    if admin:
        await set_role(harness, email, "admin")
    sessions = [await harness.login(email) for _ in range(SESSIONS)]
    return Round(harness, root, email, user["id"], sessions)


async def _survives(
    client: httpx.AsyncClient, pair: dict[str, Any], by_login: bool, must_be_dead: MustBeDead
) -> int:
    access, refresh = pair["access_token"], pair["refresh_token"]
    verified = (await client.get("/auth/verify", headers=bearer(access))).status_code == 204
    seen = (await client.get("/me", headers=bearer(access))).status_code == 200
    refreshed = (await client.post("/auth/refresh", headers=bearer(refresh))).status_code == 200
    if not must_be_dead(pair, by_login, verified):
        return 0
    return verified + seen + refreshed


async def race(
    committing: tuple[Harness, list[str]],
    change: Change,
    must_be_dead: MustBeDead,
    *,
    admin: bool = False,
    spare_first: bool = False,
    expected: int = 200,
    spread: float = FAST,
) -> Tally:
    """ROUNDS rounds of LOGINS logins and refreshes of the user's sessions racing `change`."""
    harness, emails = committing
    root_email = random_email()
    emails.append(root_email)
    await harness.register(root_email)
    await set_role(harness, root_email, "admin")
    root = (await harness.login(root_email))["access_token"]
    tally = Tally()
    client = harness.client
    for _ in range(ROUNDS):
        state = await _new_round(harness, emails, root, admin=admin)
        raced = state.sessions[1:] if spare_first else state.sessions
        results = await asyncio.gather(
            *(_login(client, state.email, random.uniform(0, spread)) for _ in range(LOGINS)),
            *(client.post("/auth/refresh", headers=bearer(s["refresh_token"])) for s in raced),
            change(state),
        )
        *racers, answer = results
        assert answer.status_code == expected, answer.text
        pairs = []
        for number, response in enumerate(racers):
            tally.saw(response)
            if response.status_code == 200:
                pairs.append((response.json(), number < LOGINS))
        tally.tokens += len(pairs)
        counts = await asyncio.gather(
            *(_survives(client, p, by_login, must_be_dead) for p, by_login in pairs)
        )
        tally.survivors += sum(counts)
    return tally


def _report(what: str, tally: Tally) -> None:
    print(
        f"\n{what}: survivors {tally.survivors} of {tally.tokens} racing tokens "
        f"(x3 checks each); racer statuses {dict(sorted(tally.statuses.items()))}"
    )


def _any_acceptance(pair: dict[str, Any], by_login: bool, verified: bool) -> bool:
    return True


async def test_no_login_or_refresh_racing_a_demotion_keeps_the_admin_role(
    committing: tuple[Harness, list[str]],
) -> None:
    async def demote(state: Round) -> httpx.Response:
        return await state.harness.client.patch(
            f"/admin/users/{state.user_id}", json={"role": "user"}, headers=bearer(state.root)
        )

    def was_admin(pair: dict[str, Any], by_login: bool, verified: bool) -> bool:
        # A login after the demotion gets a user token, rightly; an admin one must be dead.
        return role_of(pair["access_token"]) == "admin"

    tally = await race(committing, demote, was_admin, admin=True)
    _report("demotion", tally)
    assert tally.survivors == 0
    assert set(tally.statuses) <= {200, 401}


async def test_no_old_password_login_or_other_refresh_survives_a_password_change(
    committing: tuple[Harness, list[str]],
) -> None:
    async def change_password(state: Round) -> httpx.Response:
        return await state.harness.client.post(
            "/me/password",
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            headers=bearer(state.sessions[0]["access_token"]),
        )

    tally = await race(
        committing, change_password, _any_acceptance, spare_first=True, expected=204, spread=SLOW
    )
    _report("password change", tally)
    assert tally.survivors == 0
    assert set(tally.statuses) <= {200, 401}


async def test_no_login_or_refresh_racing_a_disable_survives_it(
    committing: tuple[Harness, list[str]],
) -> None:
    async def disable(state: Round) -> httpx.Response:
        return await state.harness.client.patch(
            f"/admin/users/{state.user_id}", json={"disabled": True}, headers=bearer(state.root)
        )

    tally = await race(committing, disable, _any_acceptance)
    _report("disable", tally)
    assert tally.survivors == 0
    assert set(tally.statuses) <= {200, 401, 403}


async def test_no_login_or_refresh_racing_an_account_deletion_survives_it_or_fails(
    committing: tuple[Harness, list[str]],
) -> None:
    async def delete_me(state: Round) -> httpx.Response:
        return await state.harness.client.request(
            "DELETE",
            "/me",
            json={"password": PASSWORD},
            headers=bearer(state.sessions[0]["access_token"]),
        )

    tally = await race(committing, delete_me, _any_acceptance, expected=204, spread=SLOW)
    _report("DELETE /me", tally)
    assert tally.survivors == 0
    # Never a 500 (a session INSERT meeting the deleted user's foreign key).
    assert set(tally.statuses) <= {200, 401}


def _issued_before_it(pair: dict[str, Any], by_login: bool, verified: bool) -> bool:
    # A login after the sign-out rightly keeps its tokens. One whose own access token the
    # server refuses was issued before it: its refresh chain must be dead too, as must
    # everything refreshed from the sessions the sign-out ended.
    return not by_login or not verified


async def test_no_session_opened_before_logout_all_lives_on_after_it(
    committing: tuple[Harness, list[str]],
) -> None:
    async def logout_all(state: Round) -> httpx.Response:
        return await state.harness.client.post(
            "/auth/logout-all", headers=bearer(state.sessions[0]["access_token"])
        )

    tally = await race(committing, logout_all, _issued_before_it, expected=204)
    _report("logout-all", tally)
    assert tally.survivors == 0
    assert set(tally.statuses) <= {200, 401}


async def test_no_session_opened_before_an_admin_sign_out_lives_on_after_it(
    committing: tuple[Harness, list[str]],
) -> None:
    async def sign_out(state: Round) -> httpx.Response:
        return await state.harness.client.delete(
            f"/admin/users/{state.user_id}/sessions", headers=bearer(state.root)
        )

    tally = await race(committing, sign_out, _issued_before_it, expected=204)
    _report("admin sign-out", tally)
    assert tally.survivors == 0
    assert set(tally.statuses) <= {200, 401}
