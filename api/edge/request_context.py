"""Where the current request comes from, and its id: what audit events and log lines say.

Set by a Flask `before_request` hook in a context variable, which the async view's
coroutine shares (it runs in the request's task, whose context Flask's greenlet shares:
api.edge.internals), so the services that record events need no request object.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from functools import cached_property
from typing import Any

from flask import request

from api.edge.environ_keys import REQUEST_ID
from api.schemas import printable
from api.security.client_address import ClientAddress, client_address

USER_AGENT_MAX = 512


class RequestOrigin:
    """One request's id, client address and user agent (worked out when first asked)."""

    def __init__(self, environ: Mapping[str, Any], request_id: str) -> None:
        self._environ = environ
        self.request_id = request_id

    @cached_property
    def client(self) -> ClientAddress:
        """The client's address (behind TRUSTED_PROXY_HOPS proxies)."""
        return client_address(self._environ)

    @property
    def ip(self) -> str | None:
        """The client's address as sessions and audit events store it."""
        return self.client.stored

    @cached_property
    def user_agent(self) -> str | None:
        """The User-Agent, fitting its column, without control characters (Postgres text
        refuses NUL)."""
        return printable(str(self._environ.get("HTTP_USER_AGENT", "")))[:USER_AGENT_MAX] or None


_ORIGIN: ContextVar[RequestOrigin | None] = ContextVar("request_origin", default=None)


def current_origin() -> RequestOrigin | None:
    """The origin of the request being served; None outside a request (the command line)."""
    return _ORIGIN.get()


def request_origin() -> RequestOrigin:
    """The origin of the Flask request being served (noted now if it was not yet)."""
    origin = _ORIGIN.get()
    if origin is None:
        begin_request()
        origin = _ORIGIN.get()
        assert origin is not None
    return origin


def begin_request() -> None:
    """Note the request's origin and the id the bridge named it with (a Flask
    `before_request` hook)."""
    _ORIGIN.set(RequestOrigin(request.environ, request.environ[REQUEST_ID]))


def forget_request(_error: BaseException | None = None) -> None:
    """Drop the origin once the request is over (a Flask `teardown_request` hook)."""
    _ORIGIN.set(None)
