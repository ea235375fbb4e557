"""Default deny: every route of the app is either explicitly public or token-guarded."""

from __future__ import annotations

import secrets

import pytest

from api import AuthApp, create_app
from api.config.settings import Settings
from api.security.guards import is_guarded, is_public
from tests.anonymous_routes import ANONYMOUS, REFRESH


@pytest.fixture(scope="module")
def app() -> AuthApp:
    return create_app(
        Settings.from_env({"APP_ENV": "test", "JWT_SECRET_KEY": secrets.token_urlsafe(48)})
    )


def test_every_endpoint_is_public_or_guarded(app: AuthApp) -> None:
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        assert is_public(view) != is_guarded(view), rule.rule


def test_public_endpoints_are_exactly_the_anonymous_ones_and_refresh(app: AuthApp) -> None:
    public = {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if is_public(app.view_functions[rule.endpoint])
    }
    assert public == {*ANONYMOUS, REFRESH}
