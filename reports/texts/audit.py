"""/audit: which owner asked for what, and when."""

from __future__ import annotations

from datetime import datetime, tzinfo

from reports.texts.html import escape_short
from reports.texts.numbers import format_local

AUDIT_HEADER = "🧾 <b>Журнал действий владельцев</b> (последние)"
AUDIT_EMPTY = "Пока пусто."


def action_line(at: datetime, owner_id: int, action: str, details: str | None, zone: tzinfo) -> str:
    shown_details = f" <code>{escape_short(details, 80)}</code>" if details else ""
    return f"{format_local(at, zone)} · {owner_id} · /{escape_short(action, 64)}{shown_details}"
