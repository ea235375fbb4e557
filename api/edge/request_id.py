"""The request id: assigned by the bridge to every request before anything answers it, so
every answer (Flask's, a lane's, a CORS preflight's) carries it in `X-Request-ID`, and
problems, access lines and audit events name the same request."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar
from typing import Any

REQUEST_ID_HEADER = "X-Request-ID"
_HEADER_NAME = REQUEST_ID_HEADER.lower().encode()
# What a proxy's request id may look like to be passed on: it goes into logs and headers.
_SENT = re.compile(r"[A-Za-z0-9._:-]{1,128}")

Headers = list[tuple[bytes, bytes]]

# Set in the request's task; Flask's greenlet shares the task's context (api.edge.internals).
_CURRENT: ContextVar[str | None] = ContextVar("request_id", default=None)


def assign_request_id(scope: dict[str, Any], trust_sent: bool) -> str:
    """Name the request of `scope`: a proxy's id when we run one (`trust_sent`) and it
    sent a well-formed one, else a new random one. It is current from now on."""
    request_id = _sent(scope) if trust_sent else None
    request_id = request_id or uuid.uuid4().hex
    _CURRENT.set(request_id)
    return request_id


def current_request_id() -> str | None:
    """The id of the request being served; None outside a request (the command line)."""
    return _CURRENT.get()


def with_request_id(headers: Headers, request_id: str) -> Headers:
    """`headers` answering with `request_id` (replacing any the answer named)."""
    return [*((n, v) for n, v in headers if n != _HEADER_NAME), (_HEADER_NAME, request_id.encode())]


def _sent(scope: dict[str, Any]) -> str | None:
    # A proxy we run may have named the request already; a client may not choose its id.
    values = [v for name, v in scope["headers"] if name == _HEADER_NAME]
    if len(values) != 1:
        return None
    sent = values[0].decode("latin-1")
    return sent if _SENT.fullmatch(sent) else None
