"""/start and /help for owners and staff; what staff get for the owners' commands and buttons."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.filters import Command, CommandStart
from aiogram.types import Message

from bot.telegram.filters import IsOwner, IsStaff
from bot.telegram.handlers import strangers
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


async def staff_help(message: Message) -> None:
    """Tell a staff member what they can do."""
    await message.answer(texts.STAFF_HELP)


async def refuse_staff(message: Message) -> None:
    """An owners' command (or anything else) from staff: a short refusal that names their commands."""
    await message.answer(texts.STAFF_REFUSAL)


def create_staff_router() -> Router:
    """Staff's side of /start and /help, and the end of the line for what staff may not use."""
    router = Router(name="staff")
    router.message.filter(IsStaff(), F.chat.type == ChatType.PRIVATE)
    router.callback_query.filter(IsStaff())
    router.message.register(staff_help, CommandStart())
    router.message.register(staff_help, Command("help"))
    router.message.register(refuse_staff)
    # An owners' button pressed by staff (forwarded or forged): closed, nothing done or shown.
    router.callback_query.register(strangers.ignore_button)
    return router
