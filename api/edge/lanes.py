"""Lanes: requests answered on the worker's event loop in front of Flask.

A lane looks at a request's scope and either takes it (naming the route, for metrics,
and how to answer) or leaves it to Flask. The bridge asks each registered lane in
turn; nothing in it knows what a lane does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from api.errors import ApiError, problem_parts
from api.runtime import Runtime

Headers = list[tuple[bytes, bytes]]
Reply = tuple[int, Headers, bytes]


@dataclass(frozen=True)
class Taken:
    """A request a lane answers: its route template and the answer to come."""

    route: str
    answer: Callable[[], Awaitable[Reply]]


class Lane(Protocol):
    def take(self, scope: dict[str, Any]) -> Taken | None:
        """How this lane answers the request, or None to leave it to the next one."""


def encode_headers(headers: list[tuple[str, str]]) -> Headers:
    """ASGI's form of response headers."""
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]


def problem_reply(error: ApiError) -> Reply:
    """`error` as a lane's answer: the same problem+json Flask would send."""
    status, headers, body = problem_parts(error)
    return status, encode_headers(headers), body


def lanes_for(runtime: Runtime) -> list[Lane]:
    """The lanes of a served worker, in the order they are asked."""
    from api.auth.verify_lane import VerifyLane
    from api.edge.cors import Cors, CorsPreflightLane
    from api.ops.jwks import JwksLane

    lanes: list[Lane] = [VerifyLane(runtime), JwksLane(runtime)]
    cors = Cors(runtime.settings.cors_allowed_origins)
    return [CorsPreflightLane(cors), *lanes] if cors.enabled else lanes
