"""owner view: case-folded client names for search, the owners' audit log

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("search_name", sa.String(length=256), nullable=True))
    # SQLite's lower() folds ASCII only, so the folded name is computed here, in Python, for Cyrillic too.
    clients = sa.table(
        "clients", sa.column("id", ID), sa.column("name", sa.String), sa.column("search_name", sa.String)
    )
    bind = op.get_bind()
    named = bind.execute(sa.select(clients.c.id, clients.c.name).where(clients.c.name.is_not(None))).all()
    for client_id, name in named:
        bind.execute(clients.update().where(clients.c.id == client_id).values(search_name=name.casefold()))

    op.create_table(
        "owner_audit",
        sa.Column("id", ID, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("details", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("owner_audit", schema=None) as batch_op:
        batch_op.create_index("ix_owner_audit_at", ["at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("owner_audit", schema=None) as batch_op:
        batch_op.drop_index("ix_owner_audit_at")
    op.drop_table("owner_audit")
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_column("search_name")
