"""Hypercorn settings for every way the service is served (Procfile, scripts/run, tests,
benchmarks): `hypercorn --config python:api.hypercorn_config ...`.

- uvloop: measured faster than asyncio's loop for every route (scripts/bench).
- h11 refuses request heads over 16 KiB with a bare 431; a larger bound lets the app
  answer an oversized token with the documented problem+json (it refuses tokens over
  8 KiB itself), while heads beyond this still never reach it.
"""

# Imported as a module: Hypercorn copies every other name of this module into its config.
from api import preflight

worker_class = "uvloop"
h11_max_incomplete_size = 128 * 1024

# In the master, before any worker starts: a bad setting stops here with one line and
# exit code 2, and workers that die later still make the master exit non-zero.
preflight.settings_or_exit()
preflight.exit_non_zero_when_workers_die()
