"""HTTP/1.1 over a raw socket, for clients no library would be: stalled, oversized, pipelined."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from urllib.parse import urlsplit

# How long a test waits for the server before calling it a hang; far above any read
# timeout the tests configure, so it only ever ends a test that would otherwise hang.
HANG = 20.0


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


class Connection:
    """One TCP connection to the server, written and read by hand."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, url: str) -> Connection:
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> bool:
        """Write `data`; False when the server has already closed the connection."""
        try:
            self.writer.write(data)
            await self.writer.drain()
        except (ConnectionError, OSError):
            return False
        return True

    async def response(self) -> RawResponse:
        """The next response; raises TimeoutError if none comes before HANG."""
        async with asyncio.timeout(HANG):
            head = await self.reader.readuntil(b"\r\n\r\n")
            status_line, *lines = head.decode("latin-1").split("\r\n")
            headers = {}
            for line in lines:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return RawResponse(int(status_line.split()[1]), headers, body)

    async def closed_by_server(self) -> bool:
        """Whether the server closes the connection (EOF or reset) before HANG; reads
        and drops anything it sends first."""
        try:
            async with asyncio.timeout(HANG):
                while await self.reader.read(65536):
                    pass
        except (ConnectionError, OSError):
            return True
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


def head(method: str, path: str, *headers: str) -> bytes:
    """A request head with a Host header and the given extra header lines."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *headers, "", ""]
    return "\r\n".join(lines).encode("latin-1")


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


LAST_CHUNK = b"0\r\n\r\n"
