"""Ids in paths are canonical UUIDs: any other spelling of an existing id is not_found and
changes nothing; the canonical one changes the database and refuses the tokens alike."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.admin_helpers import admin_token, random_email, set_role
from tests.integration.conftest import Harness, bearer

SPELLINGS: dict[str, Callable[[str], str]] = {
    "upper case": str.upper,
    "no hyphens": lambda text: text.replace("-", ""),
    "braces": lambda text: "{" + text + "}",
    "urn": lambda text: "urn:uuid:" + text,
}
# (method, path below /admin/users/{id}, body, role the target holds first)
CHANGES: dict[str, tuple[str, str, dict[str, Any] | None, str]] = {
    "disable": ("PATCH", "", {"disabled": True}, "user"),
    "promote": ("PATCH", "", {"role": "admin"}, "user"),
    "demote": ("PATCH", "", {"role": "user"}, "admin"),
    "sign out": ("DELETE", "/sessions", None, "user"),
}
TOKENS_WORK = (200, 204)
TOKENS_REFUSED = (401, 401)


async def _token_answers(harness: Harness, access: str) -> tuple[int, int]:
    me = await harness.client.get("/me", headers=bearer(access))
    verify = await harness.client.get("/auth/verify", headers=bearer(access))
    return me.status_code, verify.status_code


async def _state(harness: Harness, admin: str, user_id: str) -> tuple[str, bool]:
    user = (await harness.client.get(f"/admin/users/{user_id}", headers=bearer(admin))).json()
    return user["role"], user["disabled"]


async def _target(harness: Harness, role: str) -> tuple[str, str]:
    email = random_email()
    user = await harness.register(email)
    if role != "user":
        await set_role(harness, email, role)
    return user["id"], (await harness.login(email))["access_token"]


@pytest.mark.parametrize("change", CHANGES)
async def test_every_admin_change_with_another_spelling_is_not_found_and_changes_nothing(
    harness: Harness, change: str
) -> None:
    method, below, body, role = CHANGES[change]
    _, admin = await admin_token(harness)
    seen = {}
    for name, spell in SPELLINGS.items():
        user_id, access = await _target(harness, role)
        before = await _state(harness, admin, user_id)
        answer = await harness.client.request(
            method, f"/admin/users/{spell(user_id)}{below}", json=body, headers=bearer(admin)
        )
        seen[name] = (
            answer.status_code,
            answer.json().get("code") if answer.content else None,
            await _state(harness, admin, user_id) == before,
            await _token_answers(harness, access),
        )
    user_id, access = await _target(harness, role)
    canonical = await harness.client.request(
        method, f"/admin/users/{user_id}{below}", json=body, headers=bearer(admin)
    )
    after = await _token_answers(harness, access)
    print(f"{change}: {seen}; canonical {canonical.status_code}, tokens then {after}")
    assert seen == {name: (404, "not_found", True, TOKENS_WORK) for name in SPELLINGS}
    assert canonical.status_code in (200, 204)
    assert after == TOKENS_REFUSED


async def test_reading_a_user_with_another_spelling_is_not_found(harness: Harness) -> None:
    admin_user, admin = await admin_token(harness)
    statuses = {
        name: (
            await harness.client.get(
                f"/admin/users/{spell(admin_user['id'])}", headers=bearer(admin)
            )
        ).status_code
        for name, spell in SPELLINGS.items()
    }
    canonical = await harness.client.get(f"/admin/users/{admin_user['id']}", headers=bearer(admin))
    print(f"GET with other spellings: {statuses}")
    assert statuses == dict.fromkeys(SPELLINGS, 404)
    assert canonical.status_code == 200


async def test_re_enabling_with_upper_case_neither_answers_nor_locks_out_later_logins(
    harness: Harness,
) -> None:
    _, admin = await admin_token(harness)
    email = random_email()
    user = await harness.register(email)
    path = f"/admin/users/{user['id']}"
    disabled = await harness.client.patch(path, json={"disabled": True}, headers=bearer(admin))
    assert disabled.status_code == 200
    upper = await harness.client.patch(
        path.upper().replace("/ADMIN/USERS/", "/admin/users/"),
        json={"disabled": False},
        headers=bearer(admin),
    )
    still = await _state(harness, admin, user["id"])
    enabled = await harness.client.patch(path, json={"disabled": False}, headers=bearer(admin))
    fresh = await harness.login(email)
    after = await _token_answers(harness, fresh["access_token"])
    print(
        f"re-enable with upper case: {upper.status_code}, disabled then {still[1]}; "
        f"canonical {enabled.status_code}, a new login's token then {after}"
    )
    assert (upper.status_code, still[1]) == (404, True)
    assert enabled.status_code == 200
    assert after == TOKENS_WORK


async def test_revoking_one_session_with_another_spelling_is_not_found(harness: Harness) -> None:
    email = random_email()
    await harness.register(email)
    own = await harness.login(email)
    other = await harness.login(email)
    session_id = other["session_id"]
    seen = {}
    for name, spell in SPELLINGS.items():
        answer = await harness.client.delete(
            f"/auth/sessions/{spell(session_id)}", headers=bearer(own["access_token"])
        )
        seen[name] = (answer.status_code, await _token_answers(harness, other["access_token"]))
    canonical = await harness.client.delete(
        f"/auth/sessions/{session_id}", headers=bearer(own["access_token"])
    )
    after = await _token_answers(harness, other["access_token"])
    print(f"DELETE /auth/sessions/{{id}}: {seen}; canonical {canonical.status_code}, {after}")
    assert seen == {name: (404, TOKENS_WORK) for name in SPELLINGS}
    assert canonical.status_code == 204
    assert after == TOKENS_REFUSED
