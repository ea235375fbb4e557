"""Who may change whom: an actor grants only roles whose permissions it holds, leaves alone
users whose role holds a permission it lacks, and never changes its own role or disables
itself (403 forbidden, nothing changed); a change within its permissions still works."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from typing import Any

from api.config.settings import Settings
from tests.integration.admin_helpers import random_email, set_role
from tests.integration.conftest import (
    Harness,
    HarnessFactory,
    bearer,
    start_harness,
    stop_harness,
)

ROLE_PERMISSIONS = {
    "user": (),
    "reader": ("users:read",),
    "support": ("users:read", "users:write"),
    "admin": ("audit:read", "users:read", "users:write"),
}


async def _member(harness: Harness, role: str, email: str | None = None) -> tuple[str, str]:
    """A new user of `role`: its id and an access token."""
    email = email or random_email()
    user = await harness.register(email)
    if role != "user":
        await set_role(harness, email, role)
    return user["id"], (await harness.login(email))["access_token"]


async def _patch(harness: Harness, token: str, user_id: str, change: dict[str, Any]) -> Any:
    return await harness.client.patch(f"/admin/users/{user_id}", json=change, headers=bearer(token))


async def _unchanged(harness: Harness, user_id: str, role: str, token: str) -> bool:
    async with harness.resources.database.unit_of_work() as uow:
        user = await uow.users.get(uuid.UUID(user_id))
    assert user is not None
    me = await harness.client.get("/me", headers=bearer(token))
    return (user.role, user.disabled, me.status_code) == (role, False, 200)


async def test_support_may_neither_raise_itself_nor_touch_admins_nor_grant_admin(
    make_harness: HarnessFactory,
) -> None:
    harness = await make_harness(role_permissions=ROLE_PERMISSIONS)
    support_id, support = await _member(harness, "support")
    admin_id, admin = await _member(harness, "admin")
    user_id, user = await _member(harness, "user")
    refusals = {
        "own role to admin": await _patch(harness, support, support_id, {"role": "admin"}),
        "own role to user": await _patch(harness, support, support_id, {"role": "user"}),
        "disable itself": await _patch(harness, support, support_id, {"disabled": True}),
        "promote a user to admin": await _patch(harness, support, user_id, {"role": "admin"}),
        "demote an admin": await _patch(harness, support, admin_id, {"role": "user"}),
        "disable an admin": await _patch(harness, support, admin_id, {"disabled": True}),
        "re-enable an admin": await _patch(harness, support, admin_id, {"disabled": False}),
    }
    seen = {name: (a.status_code, a.json().get("code")) for name, a in refusals.items()}
    audit = await harness.client.get("/admin/audit-events", headers=bearer(support))
    print(f"support's refusals: {seen}; audit with support's token: {audit.status_code}")
    assert seen == dict.fromkeys(refusals, (403, "forbidden"))
    assert await _unchanged(harness, support_id, "support", support)
    assert await _unchanged(harness, admin_id, "admin", admin)
    assert await _unchanged(harness, user_id, "user", user)
    assert audit.status_code == 403


async def test_support_signs_out_users_within_its_permissions_but_never_an_admin(
    make_harness: HarnessFactory,
) -> None:
    harness = await make_harness(role_permissions=ROLE_PERMISSIONS)
    _, support = await _member(harness, "support")
    admin_id, admin = await _member(harness, "admin")
    user_id, user = await _member(harness, "user")
    refused = await harness.client.delete(
        f"/admin/users/{admin_id}/sessions", headers=bearer(support)
    )
    signed_out = await harness.client.delete(
        f"/admin/users/{user_id}/sessions", headers=bearer(support)
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
    assert await _unchanged(harness, admin_id, "admin", admin)
    assert signed_out.status_code == 204
    assert (await harness.client.get("/me", headers=bearer(user))).status_code == 401


async def test_support_changes_users_within_its_own_permissions(
    make_harness: HarnessFactory,
) -> None:
    harness = await make_harness(role_permissions=ROLE_PERMISSIONS)
    _, support = await _member(harness, "support")
    user_id, _ = await _member(harness, "user")
    reader_id, _ = await _member(harness, "reader")
    peer_id, _ = await _member(harness, "support")
    answers = [
        await _patch(harness, support, user_id, {"role": "reader"}),
        await _patch(harness, support, user_id, {"role": "support"}),
        await _patch(harness, support, reader_id, {"role": "user"}),
        await _patch(harness, support, reader_id, {"disabled": True}),
        await _patch(harness, support, peer_id, {"disabled": True}),
    ]
    print(f"support's changes within its permissions: {[a.status_code for a in answers]}")
    assert [a.status_code for a in answers] == [200] * 5
    assert [(a.json()["role"], a.json()["disabled"]) for a in answers] == [
        ("reader", False),
        ("support", False),
        ("user", False),
        ("user", True),
        ("support", True),
    ]


async def test_an_admin_changes_neither_its_own_role_nor_disables_itself(
    make_harness: HarnessFactory,
) -> None:
    harness = await make_harness(role_permissions=ROLE_PERMISSIONS)
    admin_id, admin = await _member(harness, "admin")
    other_id, _ = await _member(harness, "admin")
    own = [
        await _patch(harness, admin, admin_id, {"role": "support"}),
        await _patch(harness, admin, admin_id, {"disabled": True}),
    ]
    print(f"admin on itself (another admin exists): {[a.status_code for a in own]}")
    assert [(a.status_code, a.json()["code"]) for a in own] == [(403, "forbidden")] * 2
    assert await _unchanged(harness, admin_id, "admin", admin)
    demoted = await _patch(harness, admin, other_id, {"role": "support"})
    assert (demoted.status_code, demoted.json()["role"]) == (200, "support")


async def test_the_last_admin_is_kept_against_an_actor_of_another_role(
    make_harness: HarnessFactory,
) -> None:
    harness = await make_harness(
        role_permissions={**ROLE_PERMISSIONS, "owner": ROLE_PERMISSIONS["admin"]}
    )
    _, owner = await _member(harness, "owner")
    admin_id, _ = await _member(harness, "admin")
    answers = [
        await _patch(harness, owner, admin_id, change)
        for change in ({"role": "user"}, {"disabled": True})
    ]
    assert [(a.status_code, a.json()["code"]) for a in answers] == [(409, "last_admin")] * 2


ROUNDS = 20


async def test_support_never_disables_a_user_an_admin_is_promoting_at_the_same_moment(
    settings: Settings,
) -> None:
    """The checks read the locked row: whichever change locks it second sees the first."""
    _, harness = await start_harness(replace(settings, role_permissions=ROLE_PERMISSIONS))
    emails = [random_email(), random_email()]
    try:
        async with harness.client:
            support_id, support = await _member(harness, "support", emails[0])
            admin_id, admin = await _member(harness, "admin", emails[1])
            verdicts = []
            for round_ in range(ROUNDS):
                email = random_email()
                emails.append(email)
                target = (await harness.register(email))["id"]
                changes = [
                    _patch(harness, admin, target, {"role": "admin"}),
                    _patch(harness, support, target, {"disabled": True}),
                ]
                # Either one sent first, by turns.
                promoted, disabled = await asyncio.gather(*changes[:: 1 if round_ % 2 else -1])
                if round_ % 2 == 0:
                    promoted, disabled = disabled, promoted
                assert promoted.status_code == 200
                assert disabled.status_code in (200, 403)
                events = (
                    await harness.client.get(
                        "/admin/audit-events",
                        params={"user_id": target, "type": "admin.user_updated"},
                        headers=bearer(admin),
                    )
                ).json()["events"]
                order = [e["actor_id"] for e in sorted(events, key=lambda e: int(e["id"]))]
                verdicts.append((disabled.status_code, order == [support_id, admin_id]))
    finally:
        await stop_harness(harness, *emails)
    wrong = [v for v in verdicts if v not in ((200, True), (403, False))]
    print(
        f"{ROUNDS} rounds of a support disabling a user an admin promotes at once: "
        f"support first {verdicts.count((200, True))}, refused after the promotion "
        f"{verdicts.count((403, False))}, wrong {len(wrong)}"
    )
    assert wrong == []
