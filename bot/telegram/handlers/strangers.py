"""Everyone who is not an owner: one short refusal, and nothing about the business."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.types import CallbackQuery, Message

from reports.texts import commands as texts


async def refuse(message: Message) -> None:
    """Refuse a stranger's private message."""
    await message.answer(texts.STRANGER_REFUSAL)


async def ignore_button(query: CallbackQuery) -> None:
    """Close a stranger's button press without revealing anything."""
    await query.answer()


def create_router() -> Router:
    """A fresh router each time: a router can belong to one dispatcher only."""
    router = Router(name="strangers")
    router.message.register(refuse, F.chat.type == ChatType.PRIVATE)
    router.callback_query.register(ignore_button)
    return router
