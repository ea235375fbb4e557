"""`flask --app api create-admin` says what a new admin must do while admins need a second
factor (MFA_REQUIRED_ROLES), and nothing more when they don't."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from api.config.settings import Settings
from tests.e2e.conftest import PASSWORD
from tests.e2e.test_admin_acceptance import _delete_user, create_admin


def test_create_admin_prints_the_second_factor_steps_when_admins_need_one(
    e2e_settings: Settings,
) -> None:
    email = "mfa-first-admin-e2e@example.com"
    strict = replace(e2e_settings, mfa_required_roles=("admin",))
    try:
        made = create_admin(strict, email, PASSWORD)
        assert made.returncode == 0, made.stderr
        print(made.stdout)
        first, *steps = made.stdout.splitlines()
        assert first == f"created {email} as admin"
        assert steps[0].startswith(f"next: {email} must enrol a second factor")
        assert any("POST /me/mfa/totp" in line for line in steps)
        assert any("POST /auth/mfa/verify" in line for line in steps)
        again = create_admin(strict, email, PASSWORD)
        assert again.stdout == f"{email} is already an admin; nothing changed\n"
    finally:
        asyncio.run(_delete_user(e2e_settings.database_url, email))
