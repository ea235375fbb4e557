"""The alternative DESIGN.md names, kept for measurement only: Hypercorn's WSGI mode,
with async views run on a dedicated event-loop thread per worker process.

Served by scripts/bench_async_bridge.py as `scripts.benchmarks.wsgi_loop_thread:app`.
"""

from __future__ import annotations

import asyncio
import threading

from api import create_app

flask_app = create_app()
_runtime = flask_app.extensions["runtime"]
_loop = asyncio.new_event_loop()
threading.Thread(target=_loop.run_forever, name="worker-loop", daemon=True).start()
# The pools must be created on the loop that will use them.
asyncio.run_coroutine_threadsafe(_runtime.start(), _loop).result()

app = flask_app.wsgi_app
