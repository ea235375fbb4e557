"""The ASGI application Hypercorn serves: lifespan for the pools, and a bridge into Flask.

The bridge names the request (api.edge.request_id), reads the body on the event loop,
bounded in size and time (see api.edge.request_body), then offers the request to the
lanes (api.edge.lanes: answered on the loop, e.g. /auth/verify with a bearer token,
each registered by the routes module it speeds up), else runs Flask in a greenlet on
the same loop and sends the buffered response. Flask's sync code runs on the loop; an
async view's coroutine is handed back to the loop by switching to the greenlet's parent
(api.edge.internals), the way SQLAlchemy's asyncio layer runs its sync core. No request
threads, no thread hops. A lane that ignores a body still had it consumed.
Every answered request is counted (api.edge.metrics) and, with ACCESS_LOG, logged
(api.edge.access_log).
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import time
from typing import Any

from a2wsgi.wsgi import build_environ
from flask import Flask

from api import create_app
from api.domain.errors import PayloadTooLarge
from api.edge.access_log import AccessLog
from api.edge.cors import Cors, CorsPreflightLane, gateway_paths
from api.edge.environ_keys import BODY_REFUSED, REQUEST_ID, ROUTE, UNMATCHED
from api.edge.internals import run_in_greenlet
from api.edge.lanes import Lane, Taken, registered_lanes
from api.edge.metrics import observe_request, worker_exited
from api.edge.request_body import Body, ClientGone, drain, read_body
from api.edge.request_id import assign_request_id, with_request_id
from api.runtime import Runtime, StartupRefused

logger = logging.getLogger(__name__)


Scope = dict[str, Any]
Message = dict[str, Any]
Headers = list[tuple[bytes, bytes]]


class AsgiApp:
    """Serves one Flask app over ASGI, owning its worker runtime."""

    def __init__(self, app: Flask, lanes: list[Lane] | None = None) -> None:
        self.flask = app
        self.runtime: Runtime = app.extensions["runtime"]
        settings = self.runtime.settings
        self._max_body = settings.max_body_bytes
        self._read_timeout = settings.request_read_timeout
        self._cors = Cors(settings.cors_allowed_origins)
        self._lanes = self._lanes_of(app) if lanes is None else lanes
        self._access_log = AccessLog(settings.trusted_proxy_hops) if settings.access_log else None
        self._trust_sent_id = bool(settings.trusted_proxy_hops)
        self.runtime.draining.keep_accepting_after_stop(settings.drain_delay)

    def _lanes_of(self, app: Flask) -> list[Lane]:
        # The preflight lane first: a preflight carries no token, and is the browser's alone.
        lanes = [make(self.runtime) for make in registered_lanes(app)]
        if not self._cors.enabled:
            return lanes
        return [CorsPreflightLane(self._cors, gateway_paths(app)), *lanes]

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
                except StartupRefused as error:
                    logger.error("%s", error)  # one line: the reason is the whole story
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
                except Exception as error:
                    logger.exception("worker start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
                self.runtime.draining.watch_signals(asyncio.get_running_loop())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.runtime.stop()
                worker_exited(os.getpid())
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Any, send: Any) -> None:
        started = time.perf_counter()
        scope["headers"] = _without_underscored_names(scope["headers"])
        request_id = assign_request_id(scope, self._trust_sent_id)
        try:
            body = await read_body(
                receive, _content_length(scope), self._max_body, self._read_timeout
            )
        except ClientGone:
            return
        taken = None if body.refusal else self._lane_for(scope, body.content)
        if taken is not None:
            route = taken.route
            status, headers, content = await taken.answer()
        else:
            route, status, headers, content = await self._flask(scope, body, request_id)
        headers = with_request_id(self._cors.on_answer(scope, headers), request_id)
        if not body.ended:
            # The client is still sending (or stalled): this connection carries no more requests.
            headers = [*headers, (b"connection", b"close")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        if isinstance(body.refusal, PayloadTooLarge) and not body.ended:
            # Answer first, so a client that reads while it sends stops early; then drain,
            # so one that reads only after sending still finds the answer.
            await send({"type": "http.response.body", "body": content, "more_body": True})
            await drain(receive, self._read_timeout)
            content = b""
        await send({"type": "http.response.body", "body": content})
        seconds = time.perf_counter() - started
        observe_request(route, scope["method"], status, seconds)
        if self._access_log is not None:
            self._access_log.write(scope, route, status, seconds, request_id)

    def _lane_for(self, scope: Scope, body: bytes) -> Taken | None:
        for lane in self._lanes:
            taken = lane.take(scope, body)
            if taken is not None:
                return taken
        return None

    async def _flask(
        self, scope: Scope, body: Body, request_id: str
    ) -> tuple[str, int, Headers, bytes]:
        environ: dict[str, Any] = dict(build_environ(scope, io.BytesIO(body.content)))  # type: ignore[arg-type]
        # The body is read whole: say how long it is, or Werkzeug drops a chunked one.
        environ["CONTENT_LENGTH"] = str(len(body.content))
        environ["wsgi.input_terminated"] = True
        environ[REQUEST_ID] = request_id
        if body.refusal is not None:
            environ[BODY_REFUSED] = body.refusal
        status, headers, chunks = await run_in_greenlet(self._call, environ)
        return environ.get(ROUTE, UNMATCHED), status, headers, b"".join(chunks)

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


def _without_underscored_names(headers: Headers) -> Headers:
    """The headers but those whose names hold `_`, dropped as nginx drops them.

    A WSGI server spells `x_forwarded_for` and `x-forwarded-for` alike
    (HTTP_X_FORWARDED_FOR) and joins their values, so a client could append its own entry
    to the header a trusted proxy set and choose the address Flask's ProxyFix reads (its
    rate-limit bucket, the address audit events record), while the lanes and the access
    log, which read the ASGI headers, saw another. Dropped, every reader sees one header.
    """
    if not any(b"_" in name for name, _ in headers):
        return headers
    return [(name, value) for name, value in headers if b"_" not in name]


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
    return AsgiApp(app or create_app())
