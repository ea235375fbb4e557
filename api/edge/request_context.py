"""Where the current request comes from, and its id: what audit events and log lines say.

Set by a Flask `before_request` hook in a context variable, which the async view's
coroutine shares (it runs in the request's task, whose context Flask's greenlet shares:
api.edge.internals), so the services that record events need no request object; a lane
that calls such a service sets it for its request (`lane_request`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cached_property
from typing import Any

from flask import request

from api.edge.environ_keys import REQUEST_ID
from api.edge.request_id import current_request_id
from api.schemas import printable
from api.security.client_address import ClientAddress, client_address

USER_AGENT_MAX = 512


class RequestOrigin:
    """One request's id, client address and user agent (worked out when first asked)."""

    def __init__(
        self, request_id: str, client: Callable[[], ClientAddress], user_agent: str
    ) -> None:
        self.request_id = request_id
        self._client = client
        self._user_agent = user_agent

    @cached_property
    def client(self) -> ClientAddress:
        """The client's address (behind TRUSTED_PROXY_HOPS proxies)."""
        return self._client()

    @property
    def ip(self) -> str | None:
        """The client's address as sessions and audit events store it."""
        return self.client.stored

    @cached_property
    def user_agent(self) -> str | None:
        """The User-Agent, fitting its column, without control characters (Postgres text
        refuses NUL)."""
        return printable(self._user_agent)[:USER_AGENT_MAX] or None


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
    environ = request.environ
    user_agent = str(environ.get("HTTP_USER_AGENT", ""))
    _ORIGIN.set(RequestOrigin(environ[REQUEST_ID], lambda: client_address(environ), user_agent))


@contextmanager
def lane_request(scope: Mapping[str, Any], client: ClientAddress) -> Iterator[RequestOrigin]:
    """The origin of a request a lane answers (api.edge.lanes), current for the block: the
    same id, address and user agent Flask's hook would note (`client`: scope_client's)."""
    # Repeated headers joined as a WSGI server joins them into HTTP_USER_AGENT.
    user_agent = b",".join(v for name, v in scope["headers"] if name == b"user-agent")
    request_id = current_request_id()
    assert request_id is not None, "the bridge names every request before a lane answers"
    origin = RequestOrigin(request_id, lambda: client, user_agent.decode("latin-1"))
    reset = _ORIGIN.set(origin)
    try:
        yield origin
    finally:
        _ORIGIN.reset(reset)


def forget_request(_error: BaseException | None = None) -> None:
    """Drop the origin once the request is over (a Flask `teardown_request` hook)."""
    _ORIGIN.set(None)
