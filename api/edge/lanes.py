"""Lanes: requests answered on the worker's event loop in front of Flask.

A lane looks at a request's scope and body and either takes it (naming the route, for metrics,
and how to answer) or leaves it to Flask. It is an optimisation of a route, registered
by the module that declares the route (`answer_on_loop`), so reading a feature's
routes shows which of its requests never reach Flask. The bridge asks each registered
lane in turn; nothing in it knows what a lane does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from flask import Blueprint
from flask.sansio.app import App
from flask.sansio.blueprints import BlueprintSetupState

from api.domain.errors import DomainError
from api.edge.request_id import current_request_id
from api.errors import from_store_failure, problem_parts, unexpected_error
from db.errors import StoreUnavailable

if TYPE_CHECKING:
    # A type only: the runtime is handed in when the bridge builds its lanes.
    from api.runtime import Runtime

Headers = list[tuple[bytes, bytes]]
Reply = tuple[int, Headers, bytes]


@dataclass(frozen=True)
class Taken:
    """A request a lane answers: its route template and the answer to come."""

    route: str
    answer: Callable[[], Awaitable[Reply]]


class Lane(Protocol):
    def take(self, scope: dict[str, Any], body: bytes) -> Taken | None:
        """How this lane answers the request (its whole `body` already read), or None to
        leave it to the next one."""


def encode_headers(headers: list[tuple[str, str]]) -> Headers:
    """ASGI's form of response headers."""
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]


def content_length(body: bytes) -> tuple[bytes, bytes]:
    """The Content-Length header Flask's answers carry (without it, HTTP/1.1 goes chunked)."""
    return b"content-length", str(len(body)).encode()


def problem_reply(error: DomainError) -> Reply:
    """`error` as a lane's answer: the same problem+json Flask would send, headers and all."""
    status, headers, body = problem_parts(error, current_request_id())
    return status, [*encode_headers(headers), content_length(body)], body


def failure_reply(error: Exception) -> Reply:
    """What Flask's error handlers (api.errors) answer to `error` raised by a view."""
    if isinstance(error, StoreUnavailable):
        return problem_reply(from_store_failure(error))
    if isinstance(error, DomainError):
        return problem_reply(error)
    return problem_reply(unexpected_error(error))


def json_reply(body: bytes) -> Reply:
    """A 200 with a JSON body, headed as Flask heads `api.schemas.respond`'s."""
    return 200, [(b"content-type", b"application/json"), content_length(body)], body


LaneFactory = Callable[["Runtime"], Lane]
_LANES = "auth_api.lanes"


def answer_on_loop(blueprint: Blueprint, lane: LaneFactory) -> None:
    """Have the bridge offer requests to `lane(runtime)` before Flask, in every app that
    registers `blueprint` (in the order blueprints and their lanes are registered)."""
    declare_for_app(blueprint, _LANES, lane)


def registered_lanes(app: App) -> list[LaneFactory]:
    """The lanes the app's blueprints registered."""
    return declared(app, _LANES)


def declare_for_app(blueprint: Blueprint, key: str, item: Any) -> None:
    """Add `item` to the list `key` of every app that registers `blueprint`."""

    def register(state: BlueprintSetupState) -> None:
        state.app.extensions.setdefault(key, []).append(item)

    blueprint.record_once(register)


def declared(app: App, key: str) -> list[Any]:
    """What the app's blueprints declared under `key` (api.edge.lanes.declare_for_app)."""
    items: list[Any] = app.extensions.get(key, [])
    return items
