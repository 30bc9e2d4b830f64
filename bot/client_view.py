"""The owner's client card and timeline in Telegram HTML, with the buttons that page through it."""

from __future__ import annotations

from datetime import tzinfo
from enum import StrEnum
from typing import Any

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot import texts
from bot.formatting import format_decimal, format_int, format_local
from bot.telegram_text import escape, escape_short, pack_lines, shorten
from reports.client_status import ClientStatus
from storage.models import StoredEvent
from storage.timeline import ClientCard, event_fields

PAGE_SIZE = 6
TEXT_PREVIEW = 180
_SHOWN_IN_LINE = frozenset(
    {
        "timestamp",
        "event",
        "channel",
        "user_id",
        "message",
        "assistant_response",
        "intent",
        "confidence",
        "response_time_ms",
        "event_id",
        "received_at",
        "actor",
    }
)


class ClientAction(StrEnum):
    CARD = "c"
    PAGE = "p"
    DETAILS = "d"
    JOURNEY = "j"


class ClientCallback(CallbackData, prefix="cl1"):
    """Versioned and short: Telegram allows 64 bytes of callback data."""

    action: ClientAction
    client_id: int
    page: int = 0


def render_card(card: ClientCard, channels: list[str], status: ClientStatus, zone: tzinfo) -> str:
    lines = [f"👤 <b>{escape(card.name or texts.CLIENT_NO_NAME)}</b> · #{card.id}"]
    for kind, label in texts.IDENTITY_LABELS.items():
        if values := card.identities.get(kind):
            lines.append(f"{label}: <code>{'</code>, <code>'.join(escape(value) for value in values)}</code>")
    if channels:
        lines.append(f"{texts.CARD_CHANNELS}: {escape(', '.join(channels))}")
    if card.first_seen:
        lines.append(f"{texts.CARD_FIRST_CONTACT}: {format_local(card.first_seen, zone)}")
    stage = texts.STAGE_LABELS[status.stage]
    if status.reason:
        stage += f" — {escape_short(status.reason, 200)}"
    lines.append(f"{texts.CARD_STATUS}: {stage}")
    if status.payments:
        lines.append(f"{texts.CARD_PAID}: {format_decimal(status.total_paid, 0)} ₽ ({status.payments})")
    lines.append(f"{texts.CARD_EVENTS}: {format_int(card.event_count)}")
    return "\n".join(lines)


def _event_line(event: StoredEvent, zone: tzinfo) -> str:
    """At most about 560 characters, so a page of PAGE_SIZE always fits one message."""
    label = texts.EVENT_LABELS.get(event.event, f"• {event.event}")
    head = (
        f"<b>{format_local(event.ts, zone, '%d.%m %H:%M')}</b> {escape_short(label, 40)} "
        f"<i>{escape_short(event.channel, 40)}</i>"
    )
    parts = [head]
    for text in (event.message, event.assistant_response):
        if text:
            parts.append(f"«{escape_short(text, TEXT_PREVIEW)}»")
    facts = []
    if event.intent:
        facts.append(escape_short(event.intent, 60))
    if event.confidence is not None:
        facts.append(f"{format_decimal(event.confidence * 100, 0)} %")
    if event.response_time_ms is not None:
        facts.append(f"{format_decimal(event.response_time_ms / 1000, 1)} с")
    extras = [key for key in event_fields(event) if key not in _SHOWN_IN_LINE]
    if extras:
        facts.append(texts.MORE_FIELDS.format(count=len(extras)))
    if facts:
        parts.append(" · ".join(facts))
    return "\n".join(parts)


def render_timeline_page(events: list[StoredEvent], page: int, pages: int, zone: tzinfo) -> str:
    header = texts.TIMELINE_HEADER.format(page=page + 1, pages=max(pages, 1))
    if not events:
        return f"{header}\n{texts.TIMELINE_EMPTY}"
    return header + "\n\n" + "\n\n".join(_event_line(event, zone) for event in events)


def render_details(events: list[StoredEvent], zone: tzinfo) -> list[str]:
    """Every field of every event on the page, split into as many messages as needed."""
    lines = []
    for event in events:
        fields: dict[str, Any] = event_fields(event)
        lines.append(f"<b>{format_local(event.ts, zone, '%d.%m.%Y %H:%M:%S')}</b> {escape(event.event)}")
        for key, value in fields.items():
            if key == "timestamp":
                continue
            shown = format_local(value, zone, "%d.%m.%Y %H:%M:%S") if hasattr(value, "astimezone") else value
            lines.append(f"  <code>{escape(key)}</code>: {escape(shown)}")
    return pack_lines(lines)


def timeline_keyboard(client_id: int, page: int, pages: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    if page > 0:
        builder.button(
            text="◀️",
            callback_data=ClientCallback(action=ClientAction.PAGE, client_id=client_id, page=page - 1),
        )
    if page + 1 < pages:
        builder.button(
            text="▶️",
            callback_data=ClientCallback(action=ClientAction.PAGE, client_id=client_id, page=page + 1),
        )
    builder.button(
        text=texts.BUTTON_DETAILS,
        callback_data=ClientCallback(action=ClientAction.DETAILS, client_id=client_id, page=page),
    )
    builder.button(
        text=texts.BUTTON_JOURNEY,
        callback_data=ClientCallback(action=ClientAction.JOURNEY, client_id=client_id),
    )
    builder.adjust(2, 2)
    return builder.as_markup()


def choice_keyboard(matches: list[tuple[int, str]]) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for client_id, title in matches:
        builder.button(
            text=shorten(title, 60),
            callback_data=ClientCallback(action=ClientAction.CARD, client_id=client_id),
        )
    builder.adjust(1)
    return builder.as_markup()
