"""Hypercorn settings the command line can't give: `hypercorn --config python:api.hypercorn_config`.

h11 refuses request heads over 16 KiB with a bare 431; a larger bound lets the app
answer an oversized token with the documented problem+json (it refuses tokens over
8 KiB itself), while heads beyond this still never reach it.
"""

h11_max_incomplete_size = 128 * 1024
