"""Variant for measurement: the ASGI bridge, with views on a dedicated loop thread per worker."""

from __future__ import annotations

import asyncio
import threading

from api import create_app
from api.runtime import Runtime
from api.serving import AsgiApp

flask_app = create_app()
runtime: Runtime = flask_app.extensions["runtime"]
_loop = asyncio.new_event_loop()
threading.Thread(target=_loop.run_forever, name="worker-loop", daemon=True).start()
_start, _stop = runtime.start, runtime.stop


async def start() -> None:
    await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(_start(), _loop))


async def stop() -> None:
    await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(_stop(), _loop))


runtime.start = start  # type: ignore[method-assign]
runtime.stop = stop  # type: ignore[method-assign]
app = AsgiApp(flask_app)
