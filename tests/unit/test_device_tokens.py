"""Device tokens: bound to one account, unforgeable, and anything else is no token."""

from __future__ import annotations

import uuid

import pytest

from api.security.device_tokens import MAX_DEVICE_TOKEN_LENGTH, TOKEN_LENGTH, DeviceTokens

SECRET = b"server secret material, never a device token key as it is"
YEAR = 365 * 24 * 3600


def test_a_device_token_names_its_device_for_its_own_account_only() -> None:
    tokens = DeviceTokens(SECRET, YEAR)
    owner, other = uuid.uuid4(), uuid.uuid4()
    issued = tokens.issue(owner)
    assert len(issued.token) == TOKEN_LENGTH <= MAX_DEVICE_TOKEN_LENGTH
    assert issued.max_age == YEAR
    device = tokens.device_of(issued.token, owner)
    assert device is not None and len(device) == 32
    assert tokens.device_of(issued.token, other) is None


def test_every_login_gets_a_new_device() -> None:
    tokens = DeviceTokens(SECRET, YEAR)
    owner = uuid.uuid4()
    first, second = tokens.issue(owner), tokens.issue(owner)
    assert first.token != second.token
    assert tokens.device_of(first.token, owner) != tokens.device_of(second.token, owner)


def test_a_token_under_another_key_is_worth_nothing() -> None:
    owner = uuid.uuid4()
    issued = DeviceTokens(b"an older secret, since rotated", YEAR).issue(owner)
    assert DeviceTokens(SECRET, YEAR).device_of(issued.token, owner) is None


def test_an_expired_token_is_worth_nothing() -> None:
    owner = uuid.uuid4()
    issued = DeviceTokens(SECRET, -1).issue(owner)
    assert DeviceTokens(SECRET, YEAR).device_of(issued.token, owner) is None


def test_every_changed_character_makes_a_token_worthless() -> None:
    tokens = DeviceTokens(SECRET, YEAR)
    owner = uuid.uuid4()
    token = tokens.issue(owner).token
    # The last character carries spare bits that decode to the same bytes: skip it.
    for position in range(len(token) - 1):
        changed = "A" if token[position] != "A" else "B"
        forged = token[:position] + changed + token[position + 1 :]
        assert tokens.device_of(forged, owner) is None, position


@pytest.mark.parametrize(
    "presented",
    [
        None,
        "",
        "x",
        "A" * TOKEN_LENGTH,
        "é" * TOKEN_LENGTH,
        "+" * TOKEN_LENGTH,
        "=" * TOKEN_LENGTH,
        "A" * (TOKEN_LENGTH + 1),
        "\x00" * TOKEN_LENGTH,
    ],
)
def test_malformed_tokens_are_no_token(presented: str | None) -> None:
    assert DeviceTokens(SECRET, YEAR).device_of(presented, uuid.uuid4()) is None
