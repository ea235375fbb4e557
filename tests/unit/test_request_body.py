"""read_body and drain: every body is read to its end, or refused, within bounds."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from api.domain.errors import PayloadTooLarge, RequestTimeout
from api.edge.request_body import ClientGone, drain, read_body

Message = dict[str, Any]


def channel(*messages: Message, then_wait: bool = False) -> Callable[[], Awaitable[Message]]:
    """An ASGI receive callable that yields `messages`, then waits forever or says disconnect."""
    queue = list(messages)

    async def receive() -> Message:
        if queue:
            return queue.pop(0)
        if then_wait:
            await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    return receive


def part(body: bytes, more: bool) -> Message:
    return {"type": "http.request", "body": body, "more_body": more}


async def test_body_within_the_limit_is_read_whole() -> None:
    body = await read_body(channel(part(b"ab", True), part(b"c", False)), None, 3, 5)
    assert (body.content, body.refusal, body.ended) == (b"abc", None, True)


async def test_declared_length_over_the_limit_is_refused_before_reading() -> None:
    body = await read_body(channel(then_wait=True), 1000, 10, 5)
    assert isinstance(body.refusal, PayloadTooLarge)
    assert not body.ended


@pytest.mark.parametrize("more", [True, False])
async def test_streamed_body_over_the_limit_is_refused(more: bool) -> None:
    body = await read_body(channel(part(b"x" * 8, True), part(b"x" * 8, more)), None, 10, 5)
    assert isinstance(body.refusal, PayloadTooLarge)
    assert body.ended is not more


async def test_stalled_body_is_refused_with_a_timeout() -> None:
    body = await read_body(channel(part(b"{", True), then_wait=True), 100, 1000, 0.05)
    assert isinstance(body.refusal, RequestTimeout)
    assert not body.ended


async def test_client_hanging_up_mid_body_is_not_a_body() -> None:
    with pytest.raises(ClientGone):
        await read_body(channel(part(b'{"email": ', True)), None, 1000, 5)


async def test_drain_reads_to_the_end_and_stops_at_a_stall_or_a_hang_up() -> None:
    messages = [part(b"x" * 1000, True) for _ in range(50)]
    receive = channel(*messages, part(b"", False), then_wait=True)
    await drain(receive, 5)
    await drain(channel(part(b"x", True), then_wait=True), 0.05)
    await drain(channel(part(b"x", True)), 5)
