"""Default deny over HTTP: every route but the anonymous ones answers token_missing."""

from __future__ import annotations

import re
import uuid

from api import create_app
from api.config.settings import Settings
from tests.anonymous_routes import ANONYMOUS
from tests.integration.conftest import Harness

PATH_PARAM = re.compile(r"<(?:[^:<>]+:)?[^<>]+>")


def operations_needing_a_token(settings: Settings) -> list[tuple[str, str]]:
    """(method, path) of every rule outside ANONYMOUS, path parameters filled with a uuid."""
    app = create_app(settings)
    return [
        (method, PATH_PARAM.sub(str(uuid.uuid4()), rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.endpoint not in ANONYMOUS
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
    ]


async def test_every_non_anonymous_route_without_token_is_token_missing(
    harness: Harness, settings: Settings
) -> None:
    operations = operations_needing_a_token(settings)
    assert len(operations) >= 8, operations
    wrong = []
    for method, path in operations:
        response = await harness.client.request(method, path)
        outcome = (
            response.status_code,
            response.headers.get("Content-Type"),
            response.headers.get("WWW-Authenticate"),
            response.json().get("code") if response.content else None,
        )
        if outcome != (401, "application/problem+json", "Bearer", "token_missing"):
            wrong.append((method, path, outcome))
    assert wrong == []
