"""Keys the ASGI bridge sets in the WSGI environ for Flask to act on."""

BODY_TOO_LARGE = "auth_api.body_too_large"
# The URL rule that served the request, for the metrics' route label.
ROUTE = "auth_api.route"
UNMATCHED = "unmatched"
