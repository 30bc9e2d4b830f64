"""The buttons of a client's card and timeline: paging, details, the journey chart, a choice of clients."""

from __future__ import annotations

from enum import StrEnum

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from reports.texts import client as texts
from reports.texts.html import shorten

PAGE_SIZE = 6


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
