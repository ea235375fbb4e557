"""Roles are the ones ROLE_PERMISSIONS names: users.role loses its fixed CHECK.

The server refuses to start when a user's role is not in ROLE_PERMISSIONS, so an
operator adds a role by changing the setting, with no migration.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint(op.f("ck_users_role"), "users", type_="check")


def downgrade() -> None:
    # Fails, and changes nothing, while a user holds a role other than these two.
    op.create_check_constraint(op.f("ck_users_role"), "users", "role IN ('user', 'admin')")
