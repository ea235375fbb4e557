"""The ASGI edge: the bridge into Flask, lanes, body limits, CORS, request ids, access log,
metrics, draining, and what Hypercorn's master runs before the workers."""
