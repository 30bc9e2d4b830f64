"""The buttons of /followup: a client per item, the four lists, pages, «Обработано» on the client's card;
and the buttons an outbox message names (the morning report's and an alert's), built when it is sent."""

from __future__ import annotations

from enum import StrEnum

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from reports.followup import FollowupLists
from reports.texts import followup as texts
from storage.followup_items import ListKind

PAGE_SIZE = 8
# The outbox's keyboard kinds: the lists, or a client's item on one list (with the message's client_id).
LISTS_KEYBOARD = "followup"
_ITEM_KEYBOARD = "followup:"


class FollowupAction(StrEnum):
    SHOW = "s"  # the lists in a new message (from the morning report or an alert)
    LIST = "l"  # another list or page, in the same message
    OPEN = "o"  # a client's card
    DONE = "d"  # «Обработано»


class FollowupCallback(CallbackData, prefix="fu1"):
    """Versioned and short: Telegram allows 64 bytes of callback data."""

    action: FollowupAction
    kind: ListKind
    page: int = 0
    client_id: int = 0


def pages(count: int) -> int:
    return max((count + PAGE_SIZE - 1) // PAGE_SIZE, 1)


def lists_keyboard(lists: FollowupLists, kind: ListKind, page: int) -> InlineKeyboardMarkup:
    """A button per client on the page, then the four lists with their counts, then the pages."""
    builder = InlineKeyboardBuilder()
    items = lists.lists.get(kind, ())
    first = page * PAGE_SIZE
    shown = items[first : first + PAGE_SIZE]
    for number, item in enumerate(shown, start=first + 1):
        builder.button(
            text=texts.item_button(number, item),
            callback_data=FollowupCallback(action=FollowupAction.OPEN, kind=kind, client_id=item.client_id),
        )
    for other, count in lists.counts().items():
        builder.button(
            text=texts.list_button(other, count),
            callback_data=FollowupCallback(action=FollowupAction.LIST, kind=other),
        )
    pager = []
    if page > 0:
        pager.append(("◀️", page - 1))
    if page + 1 < pages(len(items)):
        pager.append(("▶️", page + 1))
    for label, target in pager:
        builder.button(
            text=label, callback_data=FollowupCallback(action=FollowupAction.LIST, kind=kind, page=target)
        )
    builder.adjust(*([1] * len(shown)), len(ListKind), max(len(pager), 1))
    return builder.as_markup()


def card_keyboard(kind: ListKind, client_id: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(
        text=texts.BUTTON_DONE,
        callback_data=FollowupCallback(action=FollowupAction.DONE, kind=kind, client_id=client_id),
    )
    return builder.as_markup()


def item_keyboard_kind(kind: ListKind) -> str:
    """The outbox keyboard kind of a message about one client of list ``kind``: a button to their card."""
    return f"{_ITEM_KEYBOARD}{kind}"


def outbox_keyboard(keyboard: str | None, client_id: int | None) -> InlineKeyboardMarkup | None:
    """The buttons an outbox message names; none for an unknown kind (a newer version's, say)."""
    builder = InlineKeyboardBuilder()
    if keyboard == LISTS_KEYBOARD:
        builder.button(
            text=texts.BUTTON_LISTS,
            callback_data=FollowupCallback(action=FollowupAction.SHOW, kind=ListKind.UNANSWERED),
        )
    elif keyboard is not None and keyboard.startswith(_ITEM_KEYBOARD) and client_id is not None:
        kind = keyboard.removeprefix(_ITEM_KEYBOARD)
        if kind not in set(ListKind):
            return None
        builder.button(
            text=texts.BUTTON_CARD,
            callback_data=FollowupCallback(
                action=FollowupAction.OPEN, kind=ListKind(kind), client_id=client_id
            ),
        )
    else:
        return None
    return builder.as_markup()
