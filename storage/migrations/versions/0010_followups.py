"""follow-ups: items marked handled, and outbox messages with buttons and about one client

followup_marks keeps who marked which client's item of a follow-up list handled, and when; the outbox
gets the kind of buttons a message carries (the follow-up lists, a client's card) and the client a
message is about (an unanswered client's alert), so erasing the client erases it too.

Revision ID: 0010_followups
Revises: 0009_model_calls
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "0010_followups"
down_revision: str | None = "0009_model_calls"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "followup_marks",
        sa.Column("id", ID, nullable=False),
        sa.Column("client_id", ID, nullable=False),
        sa.Column("list_kind", sa.String(length=32), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("handled_by", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("followup_marks", schema=None) as batch_op:
        batch_op.create_index("ix_followup_marks_client", ["client_id", "list_kind"], unique=False)
        batch_op.create_index("ix_followup_marks_at", ["handled_at"], unique=False)
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("keyboard", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("client_id", ID, nullable=True))
        batch_op.create_foreign_key(
            "fk_outbox_client_id_clients", "clients", ["client_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.create_index("ix_outbox_client", ["client_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_client")
        batch_op.drop_constraint("fk_outbox_client_id_clients", type_="foreignkey")
        batch_op.drop_column("client_id")
        batch_op.drop_column("keyboard")
    op.drop_table("followup_marks")
