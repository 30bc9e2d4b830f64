"""model calls: tokens and cost on events, and the model calls waiting for their trace's user

Six optional event columns (model, provider, input_tokens, output_tokens, cached_tokens, cost), a partial
index over the events that carry a model (the AI cost of a period reads it alone; other events pay
nothing for it), and two small tables for OTLP traces: pending_spans (model calls acknowledged before
their trace named its user) and trace_users (the user a trace named on its handler span).

Revision ID: 0009_model_calls
Revises: 0008_report_columns
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_model_calls"
down_revision: str | None = "0008_report_columns"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MODEL_CALLS = ["ts", "model", "cost", "currency", "input_tokens", "output_tokens", "location"]
WITH_MODEL = sa.text("model IS NOT NULL")


def upgrade() -> None:
    # Nullable columns without a default: added in place on both backends, no table rewritten.
    op.add_column("events", sa.Column("model", sa.String(length=256), nullable=True))
    op.add_column("events", sa.Column("provider", sa.String(length=256), nullable=True))
    op.add_column("events", sa.Column("input_tokens", sa.BigInteger(), nullable=True))
    op.add_column("events", sa.Column("output_tokens", sa.BigInteger(), nullable=True))
    op.add_column("events", sa.Column("cached_tokens", sa.BigInteger(), nullable=True))
    op.add_column("events", sa.Column("cost", sa.Float(), nullable=True))
    op.create_index(
        "ix_events_model_ts",
        "events",
        MODEL_CALLS,
        unique=False,
        sqlite_where=WITH_MODEL,
        postgresql_where=WITH_MODEL,
    )
    op.create_table(
        "pending_spans",
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("span_id", sa.String(length=16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("trace_id", "span_id"),
    )
    op.create_index("ix_pending_spans_received_at", "pending_spans", ["received_at"], unique=False)
    op.create_table(
        "trace_users",
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("trace_id"),
    )
    op.create_index("ix_trace_users_seen_at", "trace_users", ["seen_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_trace_users_seen_at", table_name="trace_users")
    op.drop_table("trace_users")
    op.drop_index("ix_pending_spans_received_at", table_name="pending_spans")
    op.drop_table("pending_spans")
    op.drop_index("ix_events_model_ts", table_name="events")
    with op.batch_alter_table("events") as batch:  # SQLite rebuilds the table; others drop in place
        for name in ("cost", "cached_tokens", "output_tokens", "input_tokens", "provider", "model"):
            batch.drop_column(name)
