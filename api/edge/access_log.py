"""The access log: one line per answered request, written by the ASGI bridge.

Every field comes from a closed set or is parsed (method, route template, status,
duration, client IP): no header, cookie, body or query string is ever read into it, so
no token or password can reach the log. The fields also ride on the LogRecord as
attributes (`extra`), named in FIELDS, for a formatter that writes them structured.
"""

from __future__ import annotations

import logging
from typing import Any

from api.edge.metrics import method_label
from api.security.client_address import UNKNOWN, scope_client

logger = logging.getLogger("api.access")

FIELDS = ("method", "route", "status", "duration_ms", "client_ip", "request_id")
_LINE = " ".join(f"{name}=%s" for name in FIELDS)


class AccessLog:
    """Writes the access line of each request, with the client as the app sees it."""

    def __init__(self, trusted_proxy_hops: int) -> None:
        self._hops = trusted_proxy_hops
        # ACCESS_LOG decides, not LOG_LEVEL: the line is written whenever the log is on.
        logger.setLevel(logging.INFO)

    def write(
        self,
        scope: dict[str, Any],
        route: str,
        status: int,
        seconds: float,
        request_id: str | None = None,
    ) -> None:
        """Log one answered request of `scope` (`route`: its URL rule or "unmatched";
        `request_id`: the one its answer carries, if any)."""
        fields = {
            "method": method_label(scope["method"]),
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 1),
            "client_ip": self._client_ip(scope),
            "request_id": request_id or "-",
        }
        logger.info(_LINE, *fields.values(), extra=fields)

    def _client_ip(self, scope: dict[str, Any]) -> str:
        return scope_client(scope, self._hops).stored or UNKNOWN
