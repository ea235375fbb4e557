"""Compare emails by one Python normalisation: users.email_normalised replaces lower(email).

Postgres's lower() and Python's disagree (`İ`), so an address could register and never
log in. The new column holds db.emails.normalise_email(email), computed here in Python
over the existing rows (never with SQL), and carries the uniqueness.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from db.emails import NORMALISED_EMAIL_MAX_LENGTH, normalise_email

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 10_000

users = sa.table(
    "users",
    sa.column("id", sa.Uuid()),
    sa.column("email", sa.String()),
    sa.column("email_normalised", sa.String()),
)


def upgrade() -> None:
    op.add_column(
        "users",
        sa.Column("email_normalised", sa.String(length=NORMALISED_EMAIL_MAX_LENGTH)),
    )
    _backfill(op.get_bind())
    _refuse_duplicates(op.get_bind())
    op.alter_column("users", "email_normalised", nullable=False)
    op.create_unique_constraint(op.f("uq_users_email_normalised"), "users", ["email_normalised"])
    op.drop_index("uq_users_email_lower", table_name="users")


def downgrade() -> None:
    # Fails, and changes nothing, if accounts were made since that lower() takes for one
    # address (`İvan@…` and `ivan@…` are two accounts under the normalisation).
    op.create_index(
        "uq_users_email_lower", "users", [sa.literal_column("lower(email)")], unique=True
    )
    op.drop_constraint(op.f("uq_users_email_normalised"), "users", type_="unique")
    op.drop_column("users", "email_normalised")


def _backfill(connection: sa.Connection) -> None:
    # Keyset batches by id: bounded memory however many users there are.
    after = None
    while True:
        query = sa.select(users.c.id, users.c.email).order_by(users.c.id).limit(BATCH)
        if after is not None:
            query = query.where(users.c.id > after)
        rows = connection.execute(query).all()
        if not rows:
            return
        updates = [{"b_id": row.id, "b_normalised": _normalised(row)} for row in rows]
        connection.execute(
            users.update()
            .where(users.c.id == sa.bindparam("b_id"))
            .values(email_normalised=sa.bindparam("b_normalised")),
            updates,
        )
        after = rows[-1].id


def _normalised(row: sa.Row[tuple[object, str]]) -> str:
    normalised = normalise_email(row.email)
    if len(normalised) > NORMALISED_EMAIL_MAX_LENGTH:
        raise RuntimeError(
            f"User {row.id}'s email is longer than {NORMALISED_EMAIL_MAX_LENGTH} characters "
            "once normalised; change that user's email, then upgrade again."
        )
    return normalised


def _refuse_duplicates(connection: sa.Connection) -> None:
    # lower() let through addresses that normalise alike (`STRASSE`, `straße`): which
    # account keeps the address is a decision for a person, not for a migration.
    clashes = connection.execute(
        sa.select(sa.func.array_agg(users.c.id))
        .group_by(users.c.email_normalised)
        .having(sa.func.count() > 1)
        .limit(5)
    ).scalars()
    groups = [", ".join(str(user_id) for user_id in group) for group in clashes]
    if groups:
        raise RuntimeError(
            "These users' emails are the same address once normalised: "
            + "; ".join(f"[{group}]" for group in groups)
            + ". Change or delete all but one of each group, then upgrade again."
        )
