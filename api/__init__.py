"""The authentication API: `create_app` is the one app factory."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

import click
from flask import Flask, request
from flask.cli import NoAppException
from werkzeug.middleware.proxy_fix import ProxyFix

from api.account.routes import bp as account_bp
from api.admin.routes import bp as admin_bp
from api.auth.routes import bp as auth_bp
from api.config.settings import Settings, SettingsError
from api.domain.errors import DomainError
from api.edge.environ_keys import BODY_REFUSED, ROUTE, UNMATCHED
from api.edge.internals import async_to_sync
from api.edge.log_format import formatter
from api.edge.request_context import begin_request, forget_request
from api.errors import register_error_handlers
from api.me.routes import bp as me_bp
from api.mfa.routes import bp as mfa_bp
from api.ops.docs import bp as docs_bp
from api.ops.routes import bp as ops_bp
from api.runtime import Runtime
from api.security.guards import protect_views
from api.security.keys import KeySet
from api.security.tokens import configure_tokens

logger = logging.getLogger(__name__)


class AuthApp(Flask):
    """Flask, with async views run on the worker's own event loop (see api.edge.internals)."""

    def async_to_sync(self, func: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
        return async_to_sync(func)


def create_app(settings: Settings | None = None) -> AuthApp:
    """Build the app: settings, token rules, blueprints, default-deny guard, error handlers."""
    settings = settings or _settings_from_env()
    _configure_logging(settings.log_level, settings.log_format)
    app = AuthApp(__name__, static_folder=None)
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        PROPAGATE_EXCEPTIONS=False,
    )
    keys = KeySet.from_settings(settings)
    app.extensions["runtime"] = Runtime(settings, keys)
    if settings.trusted_proxy_hops:
        # Only as many X-Forwarded-For entries as there are proxies we run are believed.
        hops = settings.trusted_proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    configure_tokens(app, settings, keys)

    for blueprint in (auth_bp, me_bp, account_bp, mfa_bp, admin_bp, ops_bp, docs_bp):
        app.register_blueprint(blueprint)
    protect_views(app)

    register_error_handlers(app)
    app.before_request(begin_request)
    app.before_request(_note_route_and_bound_body)
    app.teardown_request(forget_request)
    return app


def _settings_from_env() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as error:
        if click.get_current_context(silent=True) is None:
            raise
        # Under the `flask` command, which loads the app even for `--help`: Flask prints
        # NoAppException as one line and still lists the commands (plugins, which read
        # the settings themselves when run).
        raise NoAppException(str(error)) from None


def _configure_logging(level: str, log_format: str) -> None:
    # Our own loggers only: Hypercorn logs its lines itself, and a root handler
    # would print each of them twice.
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(log_format))
    for name in ("api", "db"):
        logger = logging.getLogger(name)
        logger.setLevel(level)
        if not logger.handlers:
            logger.addHandler(handler)


def _note_route_and_bound_body() -> None:
    rule = request.url_rule
    request.environ[ROUTE] = rule.rule if rule is not None else UNMATCHED
    refusal: DomainError | None = request.environ.get(BODY_REFUSED)
    if refusal is not None:
        raise refusal
