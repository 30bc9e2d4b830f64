"""/audit: which owner asked for what, and when."""

from __future__ import annotations

from datetime import datetime, tzinfo

from reports.texts.html import escape_short
from reports.texts.numbers import format_local

AUDIT_HEADER = "🧾 <b>Журнал действий владельцев и администраторов</b> (последние)"
AUDIT_EMPTY = "Пока пусто."
STAFF_LABEL = "администратор"


def action_line(
    at: datetime, user_id: int, action: str, details: str | None, zone: tzinfo, *, staff: bool = False
) -> str:
    """Who (a staff member is marked so), what, with which details, and when."""
    who = f"{user_id} ({STAFF_LABEL})" if staff else str(user_id)
    shown_details = f" <code>{escape_short(details, 80)}</code>" if details else ""
    return f"{format_local(at, zone)} · {who} · /{escape_short(action, 64)}{shown_details}"
