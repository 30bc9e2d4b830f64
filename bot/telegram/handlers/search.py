"""/search: clients by words from their messages and the assistant's answers."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.settings import Settings
from bot.telegram.filters import IsTeam
from bot.telegram.middlewares import audited
from bot.telegram.views.search import hits_keyboard
from reports.texts import search as texts
from storage.database import Database
from storage.search import search_clients

MAX_RESULTS = 10


async def search(message: Message, command: CommandObject, db: Database, settings: Settings) -> None:
    """List the clients whose dialogs contain the words, each with a button to their card."""
    query = (command.args or "").strip()
    if not query:
        await message.answer(texts.USAGE)
        return
    async with db.sessions() as session:
        hits = await search_clients(session, query, limit=MAX_RESULTS + 1)
    if not hits:
        await message.answer(texts.not_found(query))
        return
    shown = hits[:MAX_RESULTS]
    more = len(hits) > MAX_RESULTS
    await message.answer(texts.hits(query, shown, more, settings.tz), reply_markup=hits_keyboard(shown))


def create_router() -> Router:
    """A fresh router each time: a router can belong to one dispatcher only."""
    router = Router(name="search")
    router.message.filter(IsTeam())
    router.message.register(search, Command("search"), flags=audited("search"))
    return router
