"""Waiting for a server process the tests started to listen on its port."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable


def wait_until_listening(
    process: subprocess.Popen[bytes],
    port: int,
    name: str,
    log: Callable[[], str],
    seconds: float = 20,
) -> None:
    """Return once 127.0.0.1:`port` accepts a connection.

    Raises:
        RuntimeError: the process exited first, or `seconds` passed (with its `log()`).
    """
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited:\n{log()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{name} did not listen within {seconds:g} s:\n{log()}")
