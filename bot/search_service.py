"""What the owner sees for /search: matching clients with a snippet each, and a button to each card."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlalchemy.ext.asyncio import AsyncSession

from bot import texts
from bot.client_view import ClientAction, ClientCallback
from bot.formatting import format_local
from bot.telegram_text import escape_short, shorten
from storage.search import SearchHit, search_clients

MAX_RESULTS = 10
QUERY_PREVIEW = 100
NAME_PREVIEW = 60
SNIPPET_PREVIEW = 220  # ten of them, the names and the header stay well within one message


@dataclass(frozen=True, slots=True)
class SearchAnswer:
    text: str
    keyboard: InlineKeyboardMarkup | None = None


def _title(hit: SearchHit) -> str:
    return hit.name or f"{texts.CLIENT_NO_NAME} · #{hit.client_id}"


def render_hits(query: str, hits: list[SearchHit], more: bool, zone: tzinfo) -> str:
    lines = [texts.SEARCH_FOUND.format(query=escape_short(query, QUERY_PREVIEW), count=len(hits))]
    for number, hit in enumerate(hits, 1):
        lines.append(
            f"\n{number}. <b>{escape_short(_title(hit), NAME_PREVIEW)}</b> · {format_local(hit.ts, zone)}"
            f"\n«{escape_short(hit.snippet, SNIPPET_PREVIEW)}»"
        )
    if more:
        lines.append("\n" + texts.SEARCH_MORE.format(count=len(hits)))
    return "\n".join(lines)


def hits_keyboard(hits: list[SearchHit]) -> InlineKeyboardMarkup:
    """One button per client, numbered like the list, opening the client's card."""
    builder = InlineKeyboardBuilder()
    for number, hit in enumerate(hits, 1):
        builder.button(
            text=f"{number}. {shorten(_title(hit), NAME_PREVIEW)}",
            callback_data=ClientCallback(action=ClientAction.CARD, client_id=hit.client_id),
        )
    builder.adjust(1)
    return builder.as_markup()


async def search_answer(session: AsyncSession, query: str, zone: tzinfo) -> SearchAnswer:
    hits = await search_clients(session, query, limit=MAX_RESULTS + 1)
    if not hits:
        return SearchAnswer(texts.SEARCH_NOT_FOUND.format(query=escape_short(query, QUERY_PREVIEW)))
    shown = hits[:MAX_RESULTS]
    return SearchAnswer(render_hits(query, shown, len(hits) > MAX_RESULTS, zone), hits_keyboard(shown))
