"""yclients: the booking system's record id on events, and the state of the link per company

events.appointment_id, with a partial index (only the rows a booking system names: a record's events are
also its state, read back to tell a webhook's change from a repeat) and in ix_events_event_ts (so
counting a booking once per appointment stays index-only); yclients_link (per company: the last webhook,
how far the reconciliation read, its last error).

Revision ID: 0012_yclients
Revises: 0008_report_columns
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# ix_events_event_ts gains appointment_id, so counting bookings once per appointment stays index-only.
EVENT_TS_BEFORE = ["event", "ts", "client_id", "user_id", "channel", "location", "response_time_ms"]
EVENT_TS_BEFORE += [
    "intent",
    "reason",
    "status",
    "amount",
    "reply_to_ts",
    "first_message_ts",
    "repeat_booking",
]
EVENT_TS = [*EVENT_TS_BEFORE, "appointment_id"]

revision: str = "0012_yclients"
down_revision: str | None = "0008_report_columns"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("events", sa.Column("appointment_id", sa.String(length=128), nullable=True))
    op.create_index(
        "ix_events_appointment",
        "events",
        ["appointment_id", "event", "ts"],
        unique=False,
        sqlite_where=sa.text("appointment_id IS NOT NULL"),
        postgresql_where=sa.text("appointment_id IS NOT NULL"),
    )
    op.drop_index("ix_events_event_ts", table_name="events")
    op.create_index("ix_events_event_ts", "events", EVENT_TS, unique=False)
    op.create_table(
        "yclients_link",
        sa.Column("company_id", sa.BigInteger(), nullable=False),
        sa.Column("last_webhook_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("synced_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_sync_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=256), nullable=True),
        sa.PrimaryKeyConstraint("company_id"),
    )


def downgrade() -> None:
    op.drop_table("yclients_link")
    op.drop_index("ix_events_event_ts", table_name="events")
    op.create_index("ix_events_event_ts", "events", EVENT_TS_BEFORE, unique=False)
    op.drop_index("ix_events_appointment", table_name="events")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("appointment_id")
