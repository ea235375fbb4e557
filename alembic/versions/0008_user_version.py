"""A per-user version, bumped by every change that ends sessions or changes privileges,
and on each session the version its login read.

A login opens its session only if the user row still carries the version it read;
a refresh rotates only a session whose version is still its user's.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A constant default: Postgres adds the columns without rewriting the tables.
    op.add_column("users", sa.Column("version", sa.Integer(), server_default="0", nullable=False))
    op.add_column(
        "sessions",
        sa.Column("user_version", sa.Integer(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("sessions", "user_version")
    op.drop_column("users", "version")
