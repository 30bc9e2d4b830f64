"""yclients: the booking system's record id on events, and the state of the link per company

events.appointment_id, with a partial index (only the rows a booking system names: a record's events are
also its state, read back to tell a webhook's change from a repeat) and in ix_events_event_ts (so
counting a booking once per appointment stays index-only); yclients_link (per company: the last webhook,
how far the reconciliation read, its last error). The BI views count people and a booking once per
appointment, with visits and cancellations; events_flat gains the appointment and the model call.

A booking's look-backs (the first message before it, an earlier booking) are the client's now, over all
their user ids: the report reads them (storage/bookings.py), and the per-user columns 0008 kept for them
(first_message_ts, repeat_booking) are dropped in place, without a table rewrite.

Revision ID: 0012_yclients
Revises: 0011_identities
Create Date: 2026-12-06
"""

import importlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# The BI views' building blocks (the zone's local day, null-safe ratios), as 0006 made them.
_bi = importlib.import_module("storage.migrations.versions.0006_bi_views")

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
# A booking's look-backs are the client's, read by the report (storage/bookings.py): the per-user columns
# 0008 kept for them go, out of the index first.
PER_USER_BOOKING_COLUMNS = (
    ("first_message_ts", sa.DateTime(timezone=True)),
    ("repeat_booking", sa.Boolean()),
)
EVENT_TS = [
    *(name for name in EVENT_TS_BEFORE if name not in dict(PER_USER_BOOKING_COLUMNS)),
    "appointment_id",
]

# events_flat's columns that came after 0006: the appointment, and the model call behind an event.
_FLAT_COLUMNS_SINCE = (
    "appointment_id",
    "model",
    "provider",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cost",
)

# One appointment, one booking (storage/bookings.py): its earliest report counts.
_COUNTED_BOOKING = (
    "e.event = 'appointment_booked' AND (e.appointment_id IS NULL OR NOT EXISTS (SELECT 1 FROM events p"
    " WHERE p.appointment_id = e.appointment_id AND p.event = 'appointment_booked'"
    " AND (p.ts < e.ts OR (p.ts = e.ts AND p.id < e.id))))"
)
_COUNTS = (
    ("messages", "e.event = 'message_received'"),
    ("ai_responses", "e.event = 'assistant_response'"),
    ("leads", "e.event = 'lead_created'"),
    ("bookings", _COUNTED_BOOKING),
    ("visits", "e.event = 'visit'"),
    ("no_shows", "e.event = 'no_show'"),
    ("cancellations", "e.event = 'appointment_cancelled'"),
    ("refusals", "e.event = 'refusal'"),
)


def _events_flat_sql(dialect: str) -> str:
    columns = ",\n  ".join(f"e.{name}" for name in (*_bi._FLAT_COLUMNS, *_FLAT_COLUMNS_SINCE))
    return f"""CREATE VIEW events_flat AS
SELECT
  e.id,
  e.client_id,
  (SELECT min(i.value) FROM client_identities i
    WHERE i.client_id = e.client_id AND i.kind = 'crm') AS client_crm_id,
  e.ts AS ts_utc,
  {_bi._local_time(dialect)} AS local_time,
  {_bi._local_day(dialect)} AS local_day,
  {columns}
FROM events e CROSS JOIN bi_settings s"""


def _daily_metrics_sql(dialect: str) -> str:
    """As the report counts since YCLIENTS came: people (clients after identity linking), not user ids;
    a booking once per appointment; visits and cancellations beside the no-shows."""
    per_client = ",\n    ".join(
        f"sum(CASE WHEN {condition} THEN 1 ELSE 0 END) AS {name}" for name, condition in _COUNTS
    )
    sums = ",\n  ".join(f"sum({name}) AS {name}" for name, _ in _COUNTS)
    return f"""CREATE VIEW daily_metrics AS
SELECT
  day,
  channel,
  sum(wrote) AS clients,
  {sums},
  sum(payments_paid) AS payments_paid,
  coalesce(sum(revenue), 0) AS revenue,
  {_bi._ratio("sum(wrote * led)", "sum(wrote)")} AS conversion_dialog_to_lead,
  {_bi._ratio("sum(led * booked)", "sum(led)")} AS conversion_lead_to_booking,
  {_bi._ratio("sum(visits)", "sum(bookings)")} AS visit_rate,
  {_bi._ratio("sum(no_shows)", "sum(bookings)")} AS no_show_rate
FROM (
  SELECT
    {_bi._local_day(dialect)} AS day,
    e.channel AS channel,
    e.client_id AS client_id,
    max(CASE WHEN e.event = 'message_received' THEN 1 ELSE 0 END) AS wrote,
    max(CASE WHEN e.event = 'lead_created' THEN 1 ELSE 0 END) AS led,
    max(CASE WHEN e.event = 'appointment_booked' THEN 1 ELSE 0 END) AS booked,
    {per_client},
    sum(CASE WHEN {_bi._PAID} THEN 1 ELSE 0 END) AS payments_paid,
    sum(CASE WHEN {_bi._PAID} THEN e.amount END) AS revenue
  FROM events e CROSS JOIN bi_settings s
  GROUP BY 1, e.channel, e.client_id
) per_client
GROUP BY day, channel"""


def _drop_views() -> None:
    """Before the events table changes: SQLite refuses to drop a column while a view reads its table."""
    for name in _bi.VIEW_NAMES:
        op.execute(f"DROP VIEW {name}")


# The downgrade's refill of the per-user columns by 0008's definitions (seeks in ix_events_client_user).
_EARLIER = (
    "SELECT earlier.ts FROM events AS earlier WHERE earlier.client_id = events.client_id"
    " AND earlier.user_id = events.user_id AND earlier.event = '{event}' AND earlier.ts {op} events.ts"
)
_PER_USER_BOOKING_BACKFILL = f"""
UPDATE events SET
  first_message_ts = ({_EARLIER.format(event="message_received", op="<=")} ORDER BY earlier.ts ASC LIMIT 1),
  repeat_booking = EXISTS ({_EARLIER.format(event="appointment_booked", op="<")})
WHERE event = 'appointment_booked'
"""


revision: str = "0012_yclients"
down_revision: str | None = "0011_identities"
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
    dialect = op.get_bind().dialect.name
    _drop_views()
    op.drop_index("ix_events_event_ts", table_name="events")
    for name, _ in PER_USER_BOOKING_COLUMNS:
        # In place on both (SQLite 3.35+): no table rewrite.
        op.execute(f"ALTER TABLE events DROP COLUMN {name}")
    op.create_index("ix_events_event_ts", "events", EVENT_TS, unique=False)
    op.execute(_events_flat_sql(dialect))
    op.execute(_daily_metrics_sql(dialect))
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
    dialect = op.get_bind().dialect.name
    _drop_views()
    op.drop_index("ix_events_event_ts", table_name="events")
    op.drop_index("ix_events_appointment", table_name="events")
    op.execute("ALTER TABLE events DROP COLUMN appointment_id")
    for name, kind in PER_USER_BOOKING_COLUMNS:
        op.add_column("events", sa.Column(name, kind, nullable=True))
    op.execute(_PER_USER_BOOKING_BACKFILL)
    op.create_index("ix_events_event_ts", "events", EVENT_TS_BEFORE, unique=False)
    op.execute(_bi.events_flat_sql(dialect))
    op.execute(_bi.daily_metrics_sql(dialect))
