"""Hypercorn settings for every way the service is served (Procfile, scripts/run, tests,
benchmarks): `hypercorn --config python:api.hypercorn_config ...`.

Hypercorn's master runs this module before it starts the workers, and pickles every
public name of it into their configuration: bind only plain values here.

- uvloop: measured faster than asyncio's loop for every route (scripts/bench).
- h11 refuses request heads over 16 KiB with a bare 431; a larger bound lets the app
  answer an oversized token with the documented problem+json (it refuses tokens over
  8 KiB itself), while heads beyond this still never reach it.
- read_timeout (REQUEST_READ_TIMEOUT): a connection silent that long while a request
  is due is closed. A request head must also arrive within keep_alive_timeout (5 s,
  Hypercorn's default) of the connection going idle; the bridge bounds each body.
- The workers' metrics folder is provided here, before they start (api.metrics_folder).
"""

import api.metrics_folder
import api.settings

worker_class = "uvloop"
h11_max_incomplete_size = 128 * 1024
read_timeout = api.settings.Settings.from_env().request_read_timeout
api.metrics_folder.provide()
