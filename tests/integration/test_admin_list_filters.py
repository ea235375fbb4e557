"""Listing filters and cursors at the edges of the calendar: 422, never a 500."""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from tests.integration.admin_helpers import admin_token
from tests.integration.conftest import Harness, bearer
from tests.integration.problems import assert_problem

EDGE_MOMENTS = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]
VALID_MOMENT = "2026-01-01T00:00:00+00:00"


def _cursor(parts: list[str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


@pytest.mark.parametrize("moment", EDGE_MOMENTS)
async def test_a_user_cursor_beyond_the_calendar_in_utc_is_a_validation_error(
    harness: Harness, moment: str
) -> None:
    _, token = await admin_token(harness)
    answer = await harness.client.get(
        "/admin/users",
        params={"cursor": _cursor([moment, str(uuid.uuid4())])},
        headers=bearer(token),
    )
    print(f"user cursor at {moment}: {answer.status_code}")
    assert_problem(answer, 422, "validation_error")


@pytest.mark.parametrize(
    "parts",
    [
        [VALID_MOMENT, "9999999999999999999"],
        [VALID_MOMENT, "²"],
        [VALID_MOMENT, "٣"],
        [VALID_MOMENT, "+1"],
        *([moment, "1"] for moment in EDGE_MOMENTS),
    ],
)
async def test_an_audit_cursor_out_of_range_is_a_validation_error(
    harness: Harness, parts: list[str]
) -> None:
    _, token = await admin_token(harness)
    answer = await harness.client.get(
        "/admin/audit-events", params={"cursor": _cursor(parts)}, headers=bearer(token)
    )
    print(f"audit cursor {parts}: {answer.status_code}")
    assert_problem(answer, 422, "validation_error")


@pytest.mark.parametrize("name", ["since", "until"])
@pytest.mark.parametrize("moment", EDGE_MOMENTS)
async def test_since_and_until_beyond_the_calendar_in_utc_are_validation_errors(
    harness: Harness, name: str, moment: str
) -> None:
    _, token = await admin_token(harness)
    answer = await harness.client.get(
        "/admin/audit-events", params={name: moment}, headers=bearer(token)
    )
    print(f"{name}={moment}: {answer.status_code}")
    body = assert_problem(answer, 422, "validation_error")
    assert [e["field"] for e in body["errors"]] == [name]


async def test_the_earliest_and_latest_moments_in_utc_still_filter(harness: Harness) -> None:
    _, token = await admin_token(harness)
    answer = await harness.client.get(
        "/admin/audit-events",
        params={"since": "0001-01-01T00:00:00Z", "until": "9999-12-31T23:59:59Z"},
        headers=bearer(token),
    )
    assert answer.status_code == 200
    assert answer.json()["events"]
