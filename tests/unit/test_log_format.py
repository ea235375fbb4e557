"""Log lines name their level in full (WARNING, not WARNI), in every logger we configure."""

from __future__ import annotations

import configparser
import json
import logging

from tests.e2e.server import ROOT


def _line(fmt: str, level: int) -> str:
    record = logging.LogRecord("api.config.settings", level, __file__, 1, "message", None, None)
    return logging.Formatter(fmt).format(record)


def test_migration_logs_name_their_level_in_full() -> None:
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(ROOT / "alembic.ini")
    fmt = ini["formatter_generic"]["format"]
    for level in (logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL):
        assert _line(fmt, level).startswith(logging.getLevelName(level) + " "), fmt


def test_json_lines_carry_an_access_lines_fields() -> None:
    from api.edge.access_log import FIELDS
    from api.edge.log_format import JsonLines

    record = logging.LogRecord("api.access", logging.INFO, __file__, 1, "access", (), None)
    for name in FIELDS:
        setattr(record, name, f"value of {name}")
    line = json.loads(JsonLines().format(record))
    assert {name: line[name] for name in FIELDS} == {name: f"value of {name}" for name in FIELDS}
