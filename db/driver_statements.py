"""Fixed statements run on asyncpg's own connection (db.engine.Database.driver_connection),
past SQLAlchemy's execution layer: for the hottest paths (a login's two statements), where
that layer cost as much event-loop CPU as the rest of the request.

Each statement is still built with SQLAlchemy Core, once, and compiled by it for asyncpg:
the SQL is the same text SQLAlchemy would send, its parameters ordered and encoded by the
same column types (a JSONB value serialised as SQLAlchemy serialises it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.sql.expression import Executable


class DriverStatement:
    """One Core statement in asyncpg's terms: its SQL and its parameters in `$n` order."""

    def __init__(self, statement: Executable) -> None:
        dialect = asyncpg_dialect()  # type: ignore[no-untyped-call]
        compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
        self.sql: str = str(compiled)
        self._names: tuple[str, ...] = tuple(compiled.positiontup or ())
        encoders: dict[str, Callable[[Any], Any]] = {}
        for name in self._names:
            encode = compiled.binds[name].type.bind_processor(dialect)
            if encode is not None:
                encoders[name] = encode
        self._encoders = encoders

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        """`params` (named as the statement's bind parameters) as asyncpg's arguments."""
        encoders = self._encoders
        return [
            encoders[name](params[name]) if name in encoders else params[name]
            for name in self._names
        ]
