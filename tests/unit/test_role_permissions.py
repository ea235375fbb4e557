"""ROLE_PERMISSIONS: a JSON object of role to permissions, refused with one line when wrong."""

from __future__ import annotations

import secrets

import pytest

from api.config.settings import Settings, SettingsError

KEY = secrets.token_urlsafe(48)


def _read(value: str) -> Settings:
    return Settings.from_env({"JWT_SECRET_KEY": KEY, "ROLE_PERMISSIONS": value})


def test_the_default_gives_admins_every_permission_and_users_none() -> None:
    settings = Settings.from_env({"JWT_SECRET_KEY": KEY})
    assert settings.role_permissions == {
        "user": (),
        "admin": ("audit:read", "users:read", "users:write"),
    }


def test_a_custom_role_is_read_with_its_permissions_sorted() -> None:
    settings = _read(
        '{"user": [], "admin": ["users:read"], "auditor": ["audit:read", "users:read"]}'
    )
    assert settings.role_permissions["auditor"] == ("audit:read", "users:read")


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("not json", "JSON object"),
        ('["user"]', "JSON object"),
        ('{"user": "users:read", "admin": []}', "JSON object"),
        ('{"admin": []}', "'user'"),
        ('{"user": []}', "'admin'"),
        ('{"user": [], "admin": [], "Root Role": []}', "'Root Role'"),
        ('{"user": [], "admin": ["user:read"]}', "unknown permission 'user:read'"),
    ],
)
def test_a_wrong_setting_is_refused_in_one_line(value: str, said: str) -> None:
    with pytest.raises(SettingsError) as refused:
        _read(value)
    message = str(refused.value)
    assert "ROLE_PERMISSIONS" in message and said in message and "\n" not in message
