"""A listening socket per Hypercorn worker (`SO_REUSEPORT`), so the kernel spreads connections.

Hypercorn's master binds one socket and hands a duplicate of it to every worker; the
worker whose loop accepts first takes a whole batch of connections, and keep-alive
clients stay where they landed, so one worker's hashing thread was saturated while the
other core idled (measured with scripts/bench). Here each worker receives instead a
socket of its own bound to the same address with `SO_REUSEPORT`: the kernel then
shares new connections out among the workers' sockets evenly (by a hash of the
addresses). The master's socket stays bound and never listens, which keeps the port
held while workers restart.

Caveat of `SO_REUSEPORT`: connections waiting in the backlog of a worker that dies
are reset; the others' are untouched.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from multiprocessing.reduction import ForkingPickler
from typing import Any

# multiprocessing's own (a duplicate of the descriptor), for every other socket.
_DEFAULT_REDUCERS: dict[type, Callable[[Any], tuple[Any, ...]]] = getattr(
    ForkingPickler, "_extra_reducers", {}
)
_default_reducer = _DEFAULT_REDUCERS.get(socket.socket)


def own_socket_per_worker() -> None:
    """Make multiprocessing hand each worker a fresh `SO_REUSEPORT` socket (in the master).

    Applies to the TCP sockets Hypercorn binds with `SO_REUSEPORT` (more than one worker);
    every other socket is passed on as before.
    """
    ForkingPickler.register(socket.socket, _reduce)


def _reduce(sock: socket.socket) -> tuple[Any, ...]:
    if _rebinds(sock):
        return _bind_own, (sock.family, sock.getsockname())
    if _default_reducer is None:
        raise TypeError(f"cannot pass {sock!r} to a worker")
    return _default_reducer(sock)


def _rebinds(sock: socket.socket) -> bool:
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.type != socket.SOCK_STREAM:
        return False
    reuse_port = sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
    listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    return bool(reuse_port) and not listening


def _bind_own(family: socket.AddressFamily, address: tuple[Any, ...]) -> socket.socket:
    """In a worker: a socket of its own on the master's address, as Hypercorn sets one up."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
