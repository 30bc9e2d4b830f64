"""report columns: each answer and booking keeps what the report used to look back for on every run

reply_to_ts (an answer: the user's latest message at or before it), first_message_ts (a booking: the
user's first message at or before it) and repeat_booking (a booking: the user booked before it). From
now on the writer keeps them (storage/report_columns.py); here they are filled for the events already
stored, by the same definitions, and ix_events_event_ts carries them so the report reads a period from
the index alone.

Revision ID: 0008_report_columns
Revises: 0007_report_speed
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_report_columns"
down_revision: str | None = "0007_report_speed"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EVENT_TS_BEFORE = ["event", "ts", "client_id", "user_id", "channel", "location", "response_time_ms"]
EVENT_TS_BEFORE += ["intent", "reason", "status", "amount"]
EVENT_TS = [*EVENT_TS_BEFORE, "reply_to_ts", "first_message_ts", "repeat_booking"]

# A user's earlier events of one kind, walked in ix_events_client_ts (client_id, ts, event, user_id).
_EARLIER = (
    "SELECT earlier.ts FROM events AS earlier WHERE earlier.client_id = events.client_id"
    " AND earlier.user_id = events.user_id AND earlier.event = '{event}' AND earlier.ts {op} events.ts"
)
_BACKFILL = f"""
UPDATE events SET
  reply_to_ts = CASE WHEN event = 'assistant_response' THEN
    ({_EARLIER.format(event="message_received", op="<=")} ORDER BY earlier.ts DESC LIMIT 1) END,
  first_message_ts = CASE WHEN event = 'appointment_booked' THEN
    ({_EARLIER.format(event="message_received", op="<=")} ORDER BY earlier.ts ASC LIMIT 1) END,
  repeat_booking = CASE WHEN event = 'appointment_booked' THEN
    EXISTS ({_EARLIER.format(event="appointment_booked", op="<")}) END
WHERE event IN ('assistant_response', 'appointment_booked')
"""


def upgrade() -> None:
    op.add_column("events", sa.Column("reply_to_ts", sa.DateTime(timezone=True), nullable=True))
    op.add_column("events", sa.Column("first_message_ts", sa.DateTime(timezone=True), nullable=True))
    op.add_column("events", sa.Column("repeat_booking", sa.Boolean(), nullable=True))
    op.execute(_BACKFILL)
    op.drop_index("ix_events_event_ts", table_name="events")
    op.create_index("ix_events_event_ts", "events", EVENT_TS, unique=False)


def downgrade() -> None:
    op.drop_index("ix_events_event_ts", table_name="events")
    op.create_index("ix_events_event_ts", "events", EVENT_TS_BEFORE, unique=False)
    with op.batch_alter_table("events") as batch:  # SQLite rebuilds the table; others drop in place
        for name in ("repeat_booking", "first_message_ts", "reply_to_ts"):
            batch.drop_column(name)
