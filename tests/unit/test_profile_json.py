"""The /me lane's hand-written JSON is pydantic's MeResponse JSON, byte for byte, for any
user a row can hold: any text (quotes, backslashes, control characters, non-ASCII,
separators JavaScript dislikes), any time and offset, either flag."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from api.me.profile_json import profile_json
from api.me.schemas import MeResponse
from api.me.service import ProfileView

# What Postgres text can hold: any code point but NUL and the lone surrogates.
storable_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"))
offsets = st.one_of(
    st.just(UTC),
    st.integers(-14 * 60, 14 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes))),
)
moments = st.builds(
    lambda moment, offset: moment.replace(tzinfo=offset),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    offsets,
)
views = st.builds(
    ProfileView,
    id=st.uuids(),
    email=storable_text,
    role=storable_text,
    disabled=st.booleans(),
    created_at=moments,
    email_verified=st.booleans(),
    mfa_enabled=st.booleans(),
)


def pydantic_json(view: ProfileView) -> bytes:
    """What the Flask view sends for `view` (api.me.routes.get_me)."""
    return MeResponse.model_validate(view).model_dump_json().encode()


@given(views)
def test_profile_json_is_pydantics_json(view: ProfileView) -> None:
    assert profile_json(view) == pydantic_json(view)


def test_profile_json_of_a_typical_row() -> None:
    view = ProfileView(
        id=uuid.UUID("0b4f3c52-4a0e-4a55-8c1e-1c3c1b0f2a11"),
        email='Zoë "the" \\ 名前@example.com',
        role="admin",
        disabled=False,
        created_at=datetime(2024, 5, 6, 7, 8, 9, 120000, tzinfo=UTC),
        email_verified=True,
        mfa_enabled=False,
    )
    assert profile_json(view) == pydantic_json(view)
    assert (
        profile_json(view)
        == (
            '{"id":"0b4f3c52-4a0e-4a55-8c1e-1c3c1b0f2a11",'
            '"email":"Zoë \\"the\\" \\\\ 名前@example.com",'
            '"role":"admin","created_at":"2024-05-06T07:08:09.120000Z","email_verified":true,'
            '"mfa_enabled":false}'
        ).encode()
    )
