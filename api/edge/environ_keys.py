"""Keys the ASGI bridge sets in the WSGI environ for Flask to act on."""

# The domain error (413, 408) the bridge refused the request's body with; Flask raises it.
BODY_REFUSED = "auth_api.body_refused"
# The URL rule that served the request, for the metrics' route label.
ROUTE = "auth_api.route"
UNMATCHED = "unmatched"
# The id the bridge named the request with (api.edge.request_id).
REQUEST_ID = "auth_api.request_id"
