"""How the service's own log lines look: text for a terminal, or one JSON object per line."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


# Structured facts a record may carry as `extra` attributes: an access line's
# (api.edge.access_log.FIELDS) and its request id.
_STRUCTURED = ("method", "route", "status", "duration_ms", "client_ip", "request_id")


class JsonLines(logging.Formatter):
    """One JSON object per record: time, level, logger, message, a security event's facts
    (the `event` extra) and an access line's fields when the record carries them."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        event = getattr(record, "event", None)
        if isinstance(event, dict):
            line["event"] = event
        for name in _STRUCTURED:
            if hasattr(record, name):
                line[name] = getattr(record, name)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def formatter(log_format: str) -> logging.Formatter:
    """The formatter of LOG_FORMAT (`text` or `json`)."""
    return JsonLines() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
