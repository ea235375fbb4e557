"""Deleting old rows a batch at a time, the way every purge does it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute


async def delete_batch(
    session: AsyncSession,
    id_column: InstrumentedAttribute[Any],
    condition: ColumnElement[bool],
    limit: int,
    *,
    oldest_first: ColumnElement[Any] | InstrumentedAttribute[Any] | None = None,
    skip_locked: bool = False,
) -> int:
    """Delete at most `limit` rows of `id_column`'s table matching `condition`; how many went.

    One statement, so a purge holds each batch's locks briefly; `skip_locked` passes over
    rows another transaction holds, so a purge never waits behind a request.
    """
    batch = select(id_column).where(condition).limit(limit)
    if oldest_first is not None:
        batch = batch.order_by(oldest_first)
    if skip_locked:
        batch = batch.with_for_update(skip_locked=True)
    statement = (
        delete(id_column.class_)
        .where(id_column.in_(batch))
        .returning(id_column)
        .execution_options(synchronize_session=False)
    )
    return len((await session.execute(statement)).all())
