"""Purge sessions that ended (expired or were revoked) more than SESSION_RETENTION ago,
and audit events older than AUDIT_RETENTION_DAYS.

Rows of ended sessions are kept only so an operator can look at recent sign-outs.
Deleting one never revives a token: a revoked token is refused through its Redis
marks, which do not depend on the row, and a refresh of a session whose row is
gone is refused because api.auth.rotation finds no row to rotate.

Each batch is its own short transaction that first takes the purge's advisory
lock, so a large backlog never holds row locks for long and two instances never
purge at once: whoever finds the lock taken stops and leaves the work to its holder.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from api.config.settings import Settings
from db.unit_of_work import UnitOfWork

BATCH_SIZE = 1000

DeleteBatch = Callable[[UnitOfWork, datetime, int], Awaitable[int]]


@dataclass(frozen=True)
class PurgeKind:
    """Something purged after a retention: its name, retention, and one batch's delete."""

    name: str
    retention_seconds: int
    delete_batch: DeleteBatch


def purge_kinds(settings: Settings) -> list[PurgeKind]:
    """Everything `purge` deletes, in order."""
    return [
        PurgeKind(
            "sessions",
            settings.session_retention,
            lambda uow, cutoff, limit: uow.sessions.delete_ended_before(cutoff, limit),
        ),
        PurgeKind(
            "audit events",
            settings.audit_retention_days * 24 * 3600,
            lambda uow, cutoff, limit: uow.audit.delete_before(cutoff, limit),
        ),
        # Links used, superseded or expired, and messages delivered or given up: kept as
        # long as ended sessions, to look at recent account activity.
        PurgeKind(
            "message tokens",
            settings.session_retention,
            lambda uow, cutoff, limit: uow.message_tokens.delete_ended_before(cutoff, limit),
        ),
        PurgeKind(
            "sent mail",
            settings.session_retention,
            lambda uow, cutoff, limit: uow.outbox.delete_done_before(cutoff, limit),
        ),
    ]


@dataclass
class PurgeReport:
    """How many rows of each kind one purge deleted, and whether another instance held the lock."""

    deleted: dict[str, int] = field(default_factory=dict)
    skipped: bool = False

    def summary(self) -> str:
        """One line for a log or a terminal."""
        counts = ", ".join(f"{name}: {count}" for name, count in self.deleted.items())
        if self.skipped:
            return f"purge stopped, another instance holds the purge lock; purged {counts}"
        return f"purged {counts}"


async def purge(
    new_unit_of_work: Callable[[], UnitOfWork],
    settings: Settings,
    *,
    batch_size: int = BATCH_SIZE,
    stop: asyncio.Event | None = None,
) -> PurgeReport:
    """Delete, in batches, every kind's rows past its retention; stop early once `stop` is set.

    Raises:
        StoreUnavailable: Postgres could not be reached.
    """
    report = PurgeReport()
    for kind in purge_kinds(settings):
        cutoff = datetime.now(UTC) - timedelta(seconds=kind.retention_seconds)
        report.deleted[kind.name] = 0
        while stop is None or not stop.is_set():
            async with new_unit_of_work() as uow:
                if not await uow.locks.try_purge():
                    report.skipped = True
                    return report
                deleted = await kind.delete_batch(uow, cutoff, batch_size)
                await uow.commit()
            report.deleted[kind.name] += deleted
            if deleted < batch_size:
                break
    return report
