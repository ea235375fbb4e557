"""The ASGI application Hypercorn serves: lifespan for the pools, and a bridge into Flask.

The bridge reads the (bounded) body on the event loop, then runs Flask in a
request thread in one hop and sends the buffered response back on the loop;
async views hop back onto the loop through Runtime.async_to_sync. Two thread
hops per request, whatever the size of the response.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from a2wsgi.wsgi import build_environ
from flask import Flask

from api.metrics import observe_request, worker_exited
from api.runtime import Runtime
from api.serving_flags import BODY_TOO_LARGE, ROUTE, UNMATCHED
from api.verify_lane import PATH as VERIFY_PATH
from api.verify_lane import VerifyLane

logger = logging.getLogger(__name__)


Scope = dict[str, Any]
Message = dict[str, Any]
Headers = list[tuple[bytes, bytes]]


class AsgiApp:
    """Serves one Flask app over ASGI, owning its worker runtime."""

    def __init__(self, app: Flask) -> None:
        self.flask = app
        self.runtime: Runtime = app.extensions["runtime"]
        settings = self.runtime.settings
        self._max_body = settings.max_body_bytes
        self._threads = ThreadPoolExecutor(settings.request_threads, thread_name_prefix="request")
        self._verify_lane = VerifyLane(self.runtime)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.runtime.start()
                except Exception as error:
                    logger.exception("worker start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.runtime.stop()
                worker_exited(os.getpid())
                self._threads.shutdown(wait=False, cancel_futures=True)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Any, send: Any) -> None:
        started = time.perf_counter()
        token = self._verify_lane.bearer_token(scope)
        if token is not None:
            route = VERIFY_PATH
            status, headers, content = await self._verify_lane.answer(token)
        else:
            route, status, headers, content = await self._flask(scope, receive)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})
        observe_request(route, scope["method"], status, time.perf_counter() - started)

    async def _flask(self, scope: Scope, receive: Any) -> tuple[str, int, Headers, bytes]:
        body, too_large = await self._read_body(scope, receive)
        environ: dict[str, Any] = dict(build_environ(scope, io.BytesIO(body)))  # type: ignore[arg-type]
        # The body is read whole: say how long it is, or Werkzeug drops a chunked one.
        environ["CONTENT_LENGTH"] = str(len(body))
        environ["wsgi.input_terminated"] = True
        if too_large:
            environ[BODY_TOO_LARGE] = True
        loop = asyncio.get_running_loop()
        status, headers, chunks = await loop.run_in_executor(self._threads, self._call, environ)
        return environ.get(ROUTE, UNMATCHED), status, headers, b"".join(chunks)

    async def _read_body(self, scope: Scope, receive: Any) -> tuple[bytes, bool]:
        declared = _content_length(scope)
        if declared is not None and declared > self._max_body:
            return b"", True
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > self._max_body:
                return b"", True
            if not message.get("more_body"):
                return bytes(body), False

    def _call(self, environ: dict[str, Any]) -> tuple[int, Headers, list[bytes]]:
        started: list[Any] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            started[:] = [status, headers]
            return None

        iterable = self.flask(environ, start_response)
        try:
            chunks = list(iterable)
        finally:
            getattr(iterable, "close", lambda: None)()
        status, headers = started
        encoded = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        return int(status.split(" ", 1)[0]), encoded, chunks


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def create_asgi_app(app: Flask | None = None) -> AsgiApp:
    """The served object: `app` (default: create_app()) behind the ASGI bridge."""
    from api import create_app

    return AsgiApp(app or create_app())
