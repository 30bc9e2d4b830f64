"""/search: clients by words from their messages and the assistant's answers."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.filters import IsOwner
from bot.search_service import search_answer
from bot.settings import Settings
from reports.texts import search as texts
from storage.audit import record_action
from storage.database import Database


async def search(message: Message, command: CommandObject, db: Database, settings: Settings) -> None:
    """List the clients whose dialogs contain the words, each with a button to their card."""
    query = (command.args or "").strip()
    if not query:
        await message.answer(texts.USAGE)
        return
    assert message.from_user is not None
    await record_action(db.sessions, message.from_user.id, "search", query)
    async with db.sessions() as session:
        answer = await search_answer(session, query, settings.tz)
    await message.answer(answer.text, reply_markup=answer.keyboard)


def create_router() -> Router:
    """A fresh router each time: a router can belong to one dispatcher only."""
    router = Router(name="search")
    router.message.filter(IsOwner())
    router.message.register(search, Command("search"))
    return router
