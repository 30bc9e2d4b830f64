"""BI views: daily_metrics and events_flat, and the one-row bi_settings with the zone they count days in

The views leave out personal data (message texts, prompts, phones, names, coordinates, extra fields), so
a BI user can be given the views without the tables. See storage/bi_views.py for how the zone is kept.

Revision ID: 0006_bi_views
Revises: 0004
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_bi_views"
down_revision: str | None = "0005_bitrix24"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VIEW_NAMES = ("daily_metrics", "events_flat")

# Columns of events_flat besides the computed ones: everything but personal data.
_FLAT_COLUMNS = (
    "event_id",
    "event",
    "channel",
    "user_id",
    "actor",
    "crm_id",
    "lead_id",
    "manager_id",
    "location",
    "scenario",
    "service",
    "intent",
    "action",
    "reason",
    "status",
    "currency",
    "confidence",
    "response_time_ms",
    "amount",
    "appointment_at",
)

_COUNTS = (
    ("messages", "message_received"),
    ("ai_responses", "assistant_response"),
    ("leads", "lead_created"),
    ("bookings", "appointment_booked"),
    ("no_shows", "no_show"),
    ("refusals", "refusal"),
)
_PAID = "e.event = 'payment_status' AND e.status = 'paid'"


def _local_time(dialect: str) -> str:
    if dialect == "sqlite":
        return "strftime('%Y-%m-%d %H:%M:%f', e.ts, s.utc_offset_minutes || ' minutes')"
    return "(e.ts AT TIME ZONE s.timezone)"


def _local_day(dialect: str) -> str:
    if dialect == "sqlite":
        return "date(e.ts, s.utc_offset_minutes || ' minutes')"
    return "CAST(e.ts AT TIME ZONE s.timezone AS DATE)"


def _ratio(numerator: str, denominator: str) -> str:
    # DOUBLE PRECISION is a real on both (SQLite's affinity rules read "DOUB"); NULL on a zero denominator.
    return f"CAST({numerator} AS DOUBLE PRECISION) / NULLIF({denominator}, 0)"


def events_flat_sql(dialect: str) -> str:
    columns = ",\n  ".join(f"e.{name}" for name in _FLAT_COLUMNS)
    return f"""CREATE VIEW events_flat AS
SELECT
  e.id,
  e.client_id,
  (SELECT min(i.value) FROM client_identities i
    WHERE i.client_id = e.client_id AND i.kind = 'crm') AS client_crm_id,
  e.ts AS ts_utc,
  {_local_time(dialect)} AS local_time,
  {_local_day(dialect)} AS local_day,
  {columns}
FROM events e CROSS JOIN bi_settings s"""


def daily_metrics_sql(dialect: str) -> str:
    """One row per local day and channel, counted as the report counts (design.md, "Report metrics").

    Grouped per user first: the conversions need to know which users did both steps that day there.
    """
    per_user_counts = ",\n    ".join(
        f"sum(CASE WHEN e.event = '{event}' THEN 1 ELSE 0 END) AS {name}" for name, event in _COUNTS
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
  {_ratio("sum(wrote * led)", "sum(wrote)")} AS conversion_dialog_to_lead,
  {_ratio("sum(led * booked)", "sum(led)")} AS conversion_lead_to_booking,
  {_ratio("sum(no_shows)", "sum(bookings)")} AS no_show_rate
FROM (
  SELECT
    {_local_day(dialect)} AS day,
    e.channel AS channel,
    e.user_id AS user_id,
    max(CASE WHEN e.event = 'message_received' THEN 1 ELSE 0 END) AS wrote,
    max(CASE WHEN e.event = 'lead_created' THEN 1 ELSE 0 END) AS led,
    max(CASE WHEN e.event = 'appointment_booked' THEN 1 ELSE 0 END) AS booked,
    {per_user_counts},
    sum(CASE WHEN {_PAID} THEN 1 ELSE 0 END) AS payments_paid,
    sum(CASE WHEN {_PAID} THEN e.amount END) AS revenue
  FROM events e CROSS JOIN bi_settings s
  GROUP BY 1, e.channel, e.user_id
) per_user
GROUP BY day, channel"""


def upgrade() -> None:
    op.create_table(
        "bi_settings",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("utc_offset_minutes", sa.Integer(), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_bi_settings_single_row"),
        sa.PrimaryKeyConstraint("id"),
    )
    # The default zone of the settings; LeadTrail writes the configured one whenever it starts.
    op.execute("INSERT INTO bi_settings (id, timezone, utc_offset_minutes) VALUES (1, 'Europe/Moscow', 180)")
    dialect = op.get_bind().dialect.name
    op.execute(events_flat_sql(dialect))
    op.execute(daily_metrics_sql(dialect))


def downgrade() -> None:
    for name in VIEW_NAMES:
        op.execute(f"DROP VIEW {name}")
    op.drop_table("bi_settings")
