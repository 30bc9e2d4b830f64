"""The buttons under /search's answer: one per client found, opening their card."""

from __future__ import annotations

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.telegram.views.clients import ClientAction, ClientCallback
from reports.texts import search as texts
from reports.texts.html import shorten
from storage.search import SearchHit


def hits_keyboard(hits: list[SearchHit]) -> InlineKeyboardMarkup:
    """One button per client, numbered like the list, opening the client's card."""
    builder = InlineKeyboardBuilder()
    for number, hit in enumerate(hits, 1):
        builder.button(
            text=f"{number}. {shorten(texts.title(hit), texts.NAME_PREVIEW)}",
            callback_data=ClientCallback(action=ClientAction.CARD, client_id=hit.client_id),
        )
    builder.adjust(1)
    return builder.as_markup()
