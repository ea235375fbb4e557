"""A real SMTP server for the tests (aiosmtpd), and reading the messages it received."""

from __future__ import annotations

import email
import re
import threading
from email.message import EmailMessage
from email.policy import default
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session

from tests.e2e.server import free_port

_TOKEN = re.compile(r"token=([A-Za-z0-9_-]{43})")
_CODE = re.compile(r"^\s*([A-Za-z0-9_-]{43})\s*$", re.MULTILINE)


def parsed(raw: bytes) -> EmailMessage:
    """A delivered message, parsed."""
    message = email.message_from_bytes(raw, policy=default)
    assert isinstance(message, EmailMessage)
    return message


def text_body(message: EmailMessage) -> str:
    """The plain-text part of a message."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def html_body(message: EmailMessage) -> str:
    """The HTML part of a message."""
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def link_token(message: EmailMessage) -> str:
    """The token in a message's link (or code, without PUBLIC_LINK_BASE)."""
    body = text_body(message)
    found = _TOKEN.search(body) or _CODE.search(body)
    assert found is not None, body
    return found.group(1)


class _Collector:
    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self._sink.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        with self._sink.lock:
            self._sink.received.append(parsed(envelope.content))
        return "250 Message accepted for delivery"


class SmtpSink:
    """aiosmtpd in this process (its own thread and loop), on a free loopback port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[EmailMessage] = []
        self.refuse: set[str] = set()
        self.lock = threading.Lock()
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}?starttls=false"

    def start(self) -> None:
        """Listen (again, after `stop`: a stopped controller's loop is closed for good)."""
        self._controller = Controller(_Collector(self), hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        """Stop listening: connections are refused until `start`."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def to(self, address: str) -> list[EmailMessage]:
        """The messages received for `address`, oldest first."""
        with self.lock:
            return [m for m in self.received if m["To"] == address]
