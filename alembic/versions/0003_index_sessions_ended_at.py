"""Index sessions by the moment they ended, so the purge finds old ones without a scan.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_sessions_ended_at",
        "sessions",
        [sa.text("least(expires_at, revoked_at)")],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_sessions_ended_at", table_name="sessions")
