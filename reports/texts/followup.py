"""The follow-up lists in words: each item's reason, ``leadtrail followup`` (text and JSON), ``/followup``
and its client card, and the morning report's line.

Names, ids, phones and channels came from sources: in Telegram texts they are shortened and escaped.
Times are shown in the configured zone.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from reports.followup import FollowupItem, FollowupLists
from reports.texts.html import escape, escape_short, shorten, shown
from reports.texts.numbers import format_duration, format_int, format_local
from storage.event_types import EventType
from storage.followup_items import ListKind

TITLES = {
    ListKind.UNANSWERED: "💬 Без ответа",
    ListKind.LEADS_WITHOUT_BOOKING: "📝 Заявки без записи",
    ListKind.NO_SHOWS: "🚫 Неявки без новой записи",
    ListKind.REPEAT_DUE: "🔁 Пора позвать снова",
}
SHORT = {
    ListKind.UNANSWERED: "без ответа",
    ListKind.LEADS_WITHOUT_BOOKING: "заявки без записи",
    ListKind.NO_SHOWS: "неявки",
    ListKind.REPEAT_DUE: "пора позвать снова",
}
ICONS = {kind: title.split(" ", 1)[0] for kind, title in TITLES.items()}
HEADER = "📋 <b>Кому ответить и позвонить</b> · на {moment}"
TERMINAL_HEADER = "Кому ответить и позвонить — на {moment}"
EMPTY = "Никого — все обработаны."
PAGE = "стр. {page} из {pages}"
BUTTON_DONE = "✅ Обработано"
BUTTON_LISTS = "📋 Открыть списки /followup"
BUTTON_CARD = "👤 Карточка клиента"
DONE = "Отмечено: обработано. Клиент вернётся в список, если от него снова что-то придёт."
NOT_IN_LIST = "Этого клиента уже нет в списке «{title}»: ему ответили, он записался или его уже обработали."
REPORT_LINE = "📋 <b>Кому ответить и позвонить сегодня</b>: {counts} — /followup"
_TIME = "%d.%m %H:%M"


def reason(item: FollowupItem, now: datetime, zone: tzinfo) -> str:
    """Why the client is on the list, plain text with the moment in the configured zone."""
    at = format_local(item.since, zone, _TIME)
    if item.kind is ListKind.UNANSWERED:
        return f"ждёт ответа {format_duration(now - item.since)} (сообщение {at})"
    if item.kind is ListKind.LEADS_WITHOUT_BOOKING:
        return f"заявка {at}, записи нет"
    if item.kind is ListKind.NO_SHOWS:
        return f"не пришёл(ла) {at}, новой записи нет"
    last = "последний визит" if item.event == EventType.VISIT else "последняя оплата"
    return f"{last} {at} ({format_duration(now - item.since)} назад), новой записи нет"


def item_json(item: FollowupItem, now: datetime, zone: tzinfo) -> dict[str, Any]:
    return {
        "client_id": item.client_id,
        "user_ids": list(item.user_ids),
        "name": item.name,
        "phone": item.phone,
        "channel": item.channel,
        "since": item.since,
        "reason": reason(item, now, zone),
    }


def as_json(lists: FollowupLists, zone: tzinfo) -> dict[str, Any]:
    """``leadtrail followup --json``: ``now`` and the four lists (times become ISO with the zone's offset)."""
    data: dict[str, Any] = {"now": lists.now}
    for kind, items in lists:
        data[kind.value] = [item_json(item, lists.now, zone) for item in items]
    return data


def terminal(lists: FollowupLists, zone: tzinfo) -> str:
    """``leadtrail followup``: every list with every item, plain text."""
    lines = [TERMINAL_HEADER.format(moment=format_local(lists.now, zone))]
    for kind, items in lists:
        lines.append(f"\n{TITLES[kind]}: {len(items)}")
        for number, item in enumerate(items, start=1):
            who = [item.name, *item.user_ids[:3], item.phone, item.channel]
            shown_who = " · ".join(part for part in who if part)
            lines.append(f"  {number}. {shown_who} — {reason(item, lists.now, zone)}")
        if not items:
            lines.append(f"  {EMPTY}")
    return "\n".join(lines)


def counts_line(lists: FollowupLists, *, short: bool = False) -> str:
    names = SHORT if short else TITLES
    return " · ".join(f"{names[kind]}: {format_int(len(items))}" for kind, items in lists)


def page(
    lists: FollowupLists, kind: ListKind, page_number: int, pages: int, page_size: int, zone: tzinfo
) -> str:
    """``/followup``: the four counts, then one page of one list (HTML)."""
    items = lists.lists.get(kind, ())
    lines = [HEADER.format(moment=format_local(lists.now, zone)), counts_line(lists), ""]
    lines.append(f"<b>{TITLES[kind]}</b> · {PAGE.format(page=page_number + 1, pages=pages)}")
    first = page_number * page_size
    for number, item in enumerate(items[first : first + page_size], start=first + 1):
        lines.append(
            f"{number}. <b>{escape_short(item.title, 60)}</b> · {shown(item.channel)} — "
            f"{escape(reason(item, lists.now, zone))}"
        )
    if not items:
        lines.append(EMPTY)
    return "\n".join(lines)


def item_button(number: int, item: FollowupItem) -> str:
    """A button's label: plain text (Telegram shows it as is)."""
    return f"{number}. {shorten(item.title, 40)}"


def list_button(kind: ListKind, count: int) -> str:
    return f"{ICONS[kind]} {format_int(count)}"


def card_header(item: FollowupItem, now: datetime, zone: tzinfo) -> str:
    """The line above the client's card opened from a list: which list and why."""
    return f"<b>{TITLES[item.kind]}</b>: {escape(reason(item, now, zone))}"


def not_in_list(kind: ListKind) -> str:
    return NOT_IN_LIST.format(title=TITLES[kind])


def report_line(lists: FollowupLists) -> str:
    """The morning report's line with the four counts."""
    return REPORT_LINE.format(counts=counts_line(lists, short=True))
