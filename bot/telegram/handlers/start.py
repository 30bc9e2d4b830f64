"""/start and /help for owners."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandStart
from aiogram.types import Message

from bot.telegram.filters import IsOwner
from reports.texts import commands as texts


async def start(message: Message) -> None:
    """Introduce the bot to an owner."""
    await message.answer(texts.START)


async def show_help(message: Message) -> None:
    """List the owner's commands."""
    await message.answer(texts.HELP)


async def unknown(message: Message) -> None:
    """Point an owner who typed something else to /help."""
    await message.answer(texts.UNKNOWN_COMMAND)


def create_router() -> Router:
    """A fresh router each time: a router can belong to one dispatcher only."""
    router = Router(name="start")
    router.message.filter(IsOwner())
    router.message.register(start, CommandStart())
    router.message.register(show_help, Command("help"))
    router.message.register(unknown)
    return router
