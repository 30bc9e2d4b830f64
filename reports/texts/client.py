"""A client in words: the card, the timeline (a page in Telegram, every field on request, the whole of it
in the terminal) and the names of event types, stages and ids they use."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from reports.client_status import ClientStatus
from reports.metrics import AiCost
from reports.texts.html import escape, escape_short, pack_lines
from reports.texts.identities import JOINED_BY
from reports.texts.numbers import (
    DEFAULT_CURRENCY,
    NONE,
    format_cost,
    format_decimal,
    format_int,
    format_local,
    format_money,
    format_percent,
)
from storage.event_types import EventType
from storage.models import StoredEvent
from storage.timeline import ClientCard, event_fields

TEXT_PREVIEW = 160
MAX_JOINED_SHOWN = 10  # lines of "joined by" on the card; the card is one message
SECONDS = "%d.%m.%Y %H:%M:%S"
USAGE = (
    "Укажите, кого искать: <code>/client tg_12345</code>, id в CRM, номер заявки, телефон или часть имени."
)
NOT_FOUND = "Клиент не найден. Проверьте id или телефон, или попробуйте часть имени."
CHOOSE = "Нашлось несколько клиентов ({count}), выберите:"
GONE = "Этого клиента больше нет в журнале."
NO_NAME = "Без имени"
IDENTITY_LABELS = {"user": "ID в каналах", "crm": "CRM", "lead": "Заявки", "phone": "Телефоны"}
CARD_CHANNELS = "Каналы"
CARD_FIRST_CONTACT = "Первое обращение"
CARD_STATUS = "Статус"
CARD_PAID = "Оплачено"
CARD_EVENTS = "Событий в ленте"
CARD_AI_COST = "Стоимость ИИ"
CARD_AI_UNPRICED = "ещё {count} без цены"
STAGE_LABELS = {
    "dialog": "💬 диалог, заявки нет",
    "lead": "📝 заявка, записи нет",
    "booked": "📅 записан",
    "visited": "✅ пришёл",
    "paid": "✅ пришёл и оплатил",
    "no_show": "🚫 не пришёл",
    "refused": "↩️ отказался",
    "cancelled": "❌ отменил запись",
}
TIMELINE_HEADER = "🗂 <b>Лента событий</b> — страница {page} из {pages}"
TIMELINE_EMPTY = "Событий нет."
MORE_FIELDS = "ещё полей: {count}"
BUTTON_DETAILS = "🔎 Подробнее"
BUTTON_JOURNEY = "📈 Путь клиента"

EVENT_LABELS: dict[str, str] = {
    EventType.MESSAGE_RECEIVED: "💬 Сообщение клиента",
    EventType.ASSISTANT_RESPONSE: "🤖 Ответ ассистента",
    EventType.LEAD_CREATED: "📝 Заявка",
    EventType.APPOINTMENT_BOOKED: "📅 Запись",
    EventType.PAYMENT_STATUS: "💳 Оплата",
    EventType.NO_SHOW: "🚫 Неявка",
    EventType.REFUSAL: "↩️ Отказ",
    EventType.MANAGER_MESSAGE: "👩‍💼 Сообщение менеджера",
    EventType.APPOINTMENT_CANCELLED: "❌ Отмена записи",
    EventType.APPOINTMENT_CONFIRMED: "👍 Запись подтверждена",
    EventType.APPOINTMENT_RESCHEDULED: "🔁 Запись перенесена",
    EventType.VISIT: "✅ Визит",
    EventType.CRM_LEAD_LINKED: "🔗 Заявка в CRM",
    EventType.LLM_CALL: "🧠 Вызов модели",
}

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
        "model",
        "input_tokens",
        "output_tokens",
        "cost",
        "currency",
    }
)


def ai_cost_line(cost: AiCost) -> str | None:
    """The client's AI cost: None when no model call of theirs was logged."""
    if not cost.calls:
        return None
    line = (
        f"{CARD_AI_COST}: {format_cost(cost.total, cost.currency)} (вызовов модели: {format_int(cost.calls)})"
    )
    if cost.unpriced_models:
        line += f", {CARD_AI_UNPRICED.format(count=format_int(len(cost.unpriced_models)))}"
    return line


def card(
    client: ClientCard,
    channels: list[str],
    status: ClientStatus,
    zone: tzinfo,
    cost: AiCost | None = None,
    *,
    show_paid: bool = True,
) -> str:
    """The card at the top of /client: who, which ids, since when, where they stand, what they paid
    (unless ``show_paid`` is off: staff do not see revenue), what their dialog cost in model calls."""
    lines = [f"👤 <b>{escape(client.name or NO_NAME)}</b> · #{client.id}"]
    for kind, label in IDENTITY_LABELS.items():
        if values := client.identities.get(kind):
            lines.append(f"{label}: {_codes(values)}")
    for joined in client.joined_by[:MAX_JOINED_SHOWN]:
        lines.append(f"🔗 {_codes(joined.user_ids)} — {JOINED_BY[joined.kind]} {_codes([joined.value])}")
    if channels:
        lines.append(f"{CARD_CHANNELS}: {escape(', '.join(channels))}")
    if client.first_seen:
        lines.append(f"{CARD_FIRST_CONTACT}: {format_local(client.first_seen, zone)}")
    stage = STAGE_LABELS[status.stage]
    if status.reason:
        stage += f" — {escape_short(status.reason, 200)}"
    lines.append(f"{CARD_STATUS}: {stage}")
    if status.payments and show_paid:
        lines.append(f"{CARD_PAID}: {format_money(status.total_paid)} ({status.payments})")
    if cost is not None and (line := ai_cost_line(cost)) is not None:
        lines.append(escape(line))
    lines.append(f"{CARD_EVENTS}: {format_int(client.event_count)}")
    return "\n".join(lines)


def _model_call(event: StoredEvent) -> str:
    """A call's model, tokens in → out and cost: «yandexgpt-lite · 120 → 40 ток. · 0,03 ₽»."""
    parts = [escape_short(event.model or "", 40)]
    if event.input_tokens is not None or event.output_tokens is not None:
        tokens = (NONE if n is None else format_int(n) for n in (event.input_tokens, event.output_tokens))
        parts.append("{} → {} ток.".format(*tokens))
    if event.cost is not None:
        currency = escape_short(event.currency or DEFAULT_CURRENCY, 8)
        parts.append(format_cost(event.cost, currency))
    return " · ".join(parts)


def _codes(values: list[str]) -> str:
    return ", ".join(f"<code>{escape(value)}</code>" for value in values)


def _event_line(event: StoredEvent, zone: tzinfo) -> str:
    """At most about 670 characters, so a page of PAGE_SIZE always fits one message."""
    label = EVENT_LABELS.get(event.event, f"• {event.event}")
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
        facts.append(format_percent(event.confidence, 0))
    if event.response_time_ms is not None:
        facts.append(f"{format_decimal(event.response_time_ms / 1000, 1)} с")
    if event.model is not None:
        facts.append(_model_call(event))
    extras = [key for key in event_fields(event) if key not in _SHOWN_IN_LINE]
    if extras:
        facts.append(MORE_FIELDS.format(count=len(extras)))
    if facts:
        parts.append(" · ".join(facts))
    return "\n".join(parts)


def timeline_page(events: list[StoredEvent], page: int, pages: int, zone: tzinfo) -> str:
    header = TIMELINE_HEADER.format(page=page + 1, pages=max(pages, 1))
    if not events:
        return f"{header}\n{TIMELINE_EMPTY}"
    return header + "\n\n" + "\n\n".join(_event_line(event, zone) for event in events)


def details(events: list[StoredEvent], zone: tzinfo, hidden: frozenset[str] = frozenset()) -> list[str]:
    """Every field of every event on the page but the ``hidden`` ones, in as many messages as needed."""
    lines = []
    for event in events:
        fields: dict[str, Any] = event_fields(event)
        lines.append(f"<b>{format_local(event.ts, zone, SECONDS)}</b> {escape(event.event)}")
        for key, value in fields.items():
            if key == "timestamp" or key in hidden:
                continue
            shown = format_local(value, zone, SECONDS) if hasattr(value, "astimezone") else value
            lines.append(f"  <code>{escape(key)}</code>: {escape(shown)}")
    return pack_lines(lines)


# The terminal's whole timeline (`leadtrail client`, the demo): plain text.
_HEADLINE_FIELDS = ("timestamp", "event", "channel", "user_id", "message", "assistant_response")
_SPEAKERS = {"client": "клиент", "manager": "менеджер", "assistant": "ассистент", "system": "система"}


def _local(moment: datetime | None, zone: tzinfo) -> str:
    return format_local(moment, zone, SECONDS) if moment else NONE


def _value(value: Any, zone: tzinfo) -> str:
    return _local(value, zone) if isinstance(value, datetime) else str(value)


def terminal_timeline(
    client: ClientCard, events: list[dict[str, Any]], zone: tzinfo, cost: AiCost | None = None
) -> str:
    """The card and every event, oldest first, for the terminal."""
    lines = [f"Клиент #{client.id}" + (f" — {client.name}" if client.name else "")]
    for kind, label in IDENTITY_LABELS.items():
        if values := client.identities.get(kind):
            lines.append(f"  {label}: {', '.join(values)}")
    for joined in client.joined_by:
        lines.append(f"  связаны {JOINED_BY[joined.kind]} {joined.value}: {', '.join(joined.user_ids)}")
    lines.append(
        f"  первое событие: {_local(client.first_seen, zone)}, последнее: {_local(client.last_seen, zone)}"
    )
    lines.append(f"  событий: {client.event_count}")
    if cost is not None and (line := ai_cost_line(cost)) is not None:
        lines.append(f"  {line}")
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
