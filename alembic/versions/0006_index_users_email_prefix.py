"""Index users.email_normalised for prefix searches (GET /admin/users?email=).

`LIKE 'abc%'` can use a plain btree only under the C collation; the pattern operator
class works whatever the database's collation is.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_users_email_normalised_pattern",
        "users",
        ["email_normalised"],
        postgresql_ops={"email_normalised": "varchar_pattern_ops"},
    )


def downgrade() -> None:
    op.drop_index("ix_users_email_normalised_pattern", table_name="users")
