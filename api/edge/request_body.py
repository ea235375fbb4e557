"""A request's body, read off the ASGI receive channel: bounded in bytes and in time.

Hypercorn queues only a few body messages for the app; an app that stops reading
leaves Hypercorn's reader blocked on that queue, and the connection then never
closes, whoever hangs up. So every body is read to its end: whole when it fits, and
after a 413 what follows is drained (up to DRAIN_LIMIT bytes, within the read
timeout) while the answer is already on its way. A stalled body is cut off by the
same timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from api.domain.errors import DomainError, PayloadTooLarge, RequestTimeout

# Enough for a client that sends a large upload whole before it reads the answer
# (most HTTP libraries) to read its 413; past this the connection is closed.
DRAIN_LIMIT = 16 * 1024 * 1024

Receive = Callable[[], Awaitable[dict[str, Any]]]


class ClientGone(Exception):
    """The client closed the connection before its request was read."""


@dataclass(frozen=True)
class Body:
    """What was read: the content, or the refusal to answer with instead."""

    content: bytes = b""
    refusal: DomainError | None = None
    # Whether the client has sent its last byte; when not, the connection must close.
    ended: bool = True


async def read_body(receive: Receive, declared: int | None, limit: int, seconds: float) -> Body:
    """The whole body if it fits in `limit` bytes and arrives within `seconds`.

    Otherwise a 413 (`declared`, the Content-Length, already over `limit`: nothing
    is read) or a 408 refusal.

    Raises:
        ClientGone: the client hung up first; nobody is left to answer.
    """
    if declared is not None and declared > limit:
        return Body(refusal=PayloadTooLarge(), ended=False)
    content = bytearray()
    try:
        async with asyncio.timeout(seconds):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientGone()
                content += message.get("body", b"")
                ended = not message.get("more_body", False)
                if len(content) > limit:
                    return Body(refusal=PayloadTooLarge(), ended=ended)
                if ended:
                    return Body(bytes(content))
    except TimeoutError:
        return Body(refusal=RequestTimeout(), ended=False)


async def drain(receive: Receive, seconds: float) -> None:
    """Read and drop the rest of a refused body, until its end, DRAIN_LIMIT bytes,
    `seconds` or the client hanging up, whichever comes first."""
    drained = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while drained <= DRAIN_LIMIT:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                drained += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return
