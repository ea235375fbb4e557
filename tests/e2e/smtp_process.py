"""`python -m aiosmtpd` as its own process, storing what it receives in a Maildir."""

from __future__ import annotations

import email
import mailbox
import subprocess
import sys
import time
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import BinaryIO

from tests.e2e.server import free_port
from tests.listening import wait_until_listening


class SmtpProcess:
    """A real SMTP server that can be stopped and started again on the same port."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.maildir = folder / "maildir"
        self.log_path = folder / "aiosmtpd.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}?starttls=false"

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "aiosmtpd",
                    "-n",
                    "-l",
                    f"127.0.0.1:{self.port}",
                    "-c",
                    "aiosmtpd.handlers.Mailbox",
                    str(self.maildir),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until_listening(self._process, self.port, "aiosmtpd", self.log_path.read_text)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None

    def messages(self) -> list[EmailMessage]:
        """Every message received so far."""
        if not self.maildir.exists():
            return []

        def parse(file: BinaryIO) -> EmailMessage:
            message = email.message_from_binary_file(file, policy=default)
            assert isinstance(message, EmailMessage)
            return message

        return list(mailbox.Maildir(self.maildir, factory=parse))  # type: ignore[arg-type]

    def to(self, address: str) -> list[EmailMessage]:
        """The messages received for `address`."""
        return [m for m in self.messages() if m["To"] == address]

    def wait_for(self, address: str, subject: str, timeout: float = 20) -> EmailMessage:
        """The newest message to `address` with `subject`, waiting up to `timeout` seconds
        for one to arrive.

        Raises:
            AssertionError: none arrived in time.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for m in self.to(address) if m["Subject"] == subject]
            if found:
                return found[-1]
            time.sleep(0.2)
        raise AssertionError(f"no {subject!r} message to {address} within {timeout} s")
