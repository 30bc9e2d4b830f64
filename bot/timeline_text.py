"""A client's card and timeline as plain text for the terminal (the bot renders its own HTML)."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from bot.texts import EVENT_LABELS
from storage.timeline import ClientCard

_HEADLINE_FIELDS = ("timestamp", "event", "channel", "user_id", "message", "assistant_response")
_SPEAKERS = {"client": "клиент", "manager": "менеджер", "assistant": "ассистент", "system": "система"}
_IDENTITY_LABELS = {"user": "id в каналах", "crm": "CRM", "lead": "заявки", "phone": "телефоны"}


def _local(moment: datetime | None, zone: tzinfo) -> str:
    return moment.astimezone(zone).strftime("%d.%m.%Y %H:%M:%S") if moment else "—"


def _value(value: Any, zone: tzinfo) -> str:
    return _local(value, zone) if isinstance(value, datetime) else str(value)


def render_timeline(card: ClientCard, events: list[dict[str, Any]], zone: tzinfo) -> str:
    lines = [f"Клиент #{card.id}" + (f" — {card.name}" if card.name else "")]
    for kind, label in _IDENTITY_LABELS.items():
        if values := card.identities.get(kind):
            lines.append(f"  {label}: {', '.join(values)}")
    lines.append(
        f"  первое событие: {_local(card.first_seen, zone)}, последнее: {_local(card.last_seen, zone)}"
    )
    lines.append(f"  событий: {card.event_count}")
    lines.append("")
    for fields in events:
        label = EVENT_LABELS.get(fields["event"], fields["event"])
        lines.append(
            f"{_local(fields['timestamp'], zone)}  {label} [{fields['channel']}, {fields['user_id']}]"
        )
        for key in ("message", "assistant_response"):
            if key in fields:
                speaker = (
                    "ассистент"
                    if key == "assistant_response"
                    else _SPEAKERS.get(str(fields.get("actor")), "клиент")
                )
                lines.append(f"    {speaker}: {fields[key]}")
        details = [
            f"{key}={_value(value, zone)}" for key, value in fields.items() if key not in _HEADLINE_FIELDS
        ]
        if details:
            lines.append("    " + ", ".join(details))
    return "\n".join(lines)
