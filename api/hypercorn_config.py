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
- The workers' metrics folder is provided here, before they start (api.edge.metrics_folder).
- Each worker listens on a socket of its own (api.edge.listening), so the kernel spreads
  connections among them.
"""

# Imported as modules: Hypercorn copies every other public name of this module into
# its config.
import api.edge.listening
import api.edge.metrics_folder
from api.edge import preflight

worker_class = "uvloop"
h11_max_incomplete_size = 128 * 1024

# In the master, before any worker starts: a bad setting, PORT or database stops here
# with one line and exit code 2, workers that die later still make the master exit
# non-zero, and no number of stop signals can deadlock it.
_settings = preflight.settings_or_exit()
preflight.port_or_exit()
preflight.database_or_exit(_settings)
read_timeout = _settings.request_read_timeout
preflight.exit_non_zero_when_workers_die()
preflight.run_signal_handlers_off_signal_context()
api.edge.metrics_folder.provide()
api.edge.listening.own_socket_per_worker()
