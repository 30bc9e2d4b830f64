"""What the owner sees for /search: matching clients with a snippet each, and a button to each card."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlalchemy.ext.asyncio import AsyncSession

from bot.client_view import ClientAction, ClientCallback
from reports.texts import search as texts
from reports.texts.html import shorten
from storage.search import SearchHit, search_clients

MAX_RESULTS = 10


@dataclass(frozen=True, slots=True)
class SearchAnswer:
    text: str
    keyboard: InlineKeyboardMarkup | None = None


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


async def search_answer(session: AsyncSession, query: str, zone: tzinfo) -> SearchAnswer:
    hits = await search_clients(session, query, limit=MAX_RESULTS + 1)
    if not hits:
        return SearchAnswer(texts.not_found(query))
    shown = hits[:MAX_RESULTS]
    return SearchAnswer(texts.hits(query, shown, len(hits) > MAX_RESULTS, zone), hits_keyboard(shown))
