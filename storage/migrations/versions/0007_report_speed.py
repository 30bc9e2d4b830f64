"""report speed: the report's two event indexes carry the columns its queries read

Revision ID: 0007_report_speed
Revises: 0004
Create Date: 2026-11-25

Both indexes keep their names and leading columns, so every query that used them still does; the extra
columns let the report read a period and walk a client's history without touching the wide table rows.
No new b-tree: an insert writes the same number of index entries, only longer ones.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007_report_speed"
down_revision: str | None = "0006_bi_views"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EVENT_TS = ["event", "ts", "client_id", "user_id", "channel", "location", "response_time_ms"]
EVENT_TS += ["intent", "reason", "status", "amount"]
CLIENT_TS = ["client_id", "ts", "event", "user_id"]


def upgrade() -> None:
    op.drop_index("ix_events_event_ts", table_name="events")
    op.create_index("ix_events_event_ts", "events", EVENT_TS, unique=False)
    op.drop_index("ix_events_client_ts", table_name="events")
    op.create_index("ix_events_client_ts", "events", CLIENT_TS, unique=False)


def downgrade() -> None:
    op.drop_index("ix_events_client_ts", table_name="events")
    op.create_index("ix_events_client_ts", "events", ["client_id", "ts"], unique=False)
    op.drop_index("ix_events_event_ts", table_name="events")
    op.create_index("ix_events_event_ts", "events", ["event", "ts"], unique=False)
