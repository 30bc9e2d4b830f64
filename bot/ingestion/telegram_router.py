"""JSON events posted in the event channel or sent in private by allowed source bots and users."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.enums import ChatType
from aiogram.filters import BaseFilter
from aiogram.types import Message

from bot.ingestion.telegram_sources import TelegramSourceService
from bot.settings import Settings


class FromEventChannel(BaseFilter):
    """A post in ``telegram.event_channel_id``."""

    async def __call__(self, message: Message, settings: Settings) -> bool:
        channel = settings.telegram.event_channel_id
        return channel is not None and message.chat.id == channel


class FromAllowedSource(BaseFilter):
    """A private message from a bot in ``telegram.source_bots`` or a person in ``telegram.source_users``.

    From a person only JSON text or a file counts, so an owner who is also a source can still use commands.
    """

    async def __call__(self, message: Message, settings: Settings) -> bool:
        sender = message.from_user
        if sender is None:
            return False
        if sender.is_bot:
            return sender.id in settings.telegram.source_bots
        looks_like_events = message.document is not None or (message.text or "").lstrip().startswith(
            ("{", "[")
        )
        return looks_like_events and sender.id in settings.telegram.source_users


async def channel_post(message: Message, bot: Bot, sources: TelegramSourceService) -> None:
    """Store the events of a post in the event channel."""
    await sources.ingest_message(bot, message, source="telegram:channel")


async def private_source(message: Message, bot: Bot, sources: TelegramSourceService) -> None:
    """Store the events a source bot or person sent in private."""
    await sources.ingest_message(bot, message, source="telegram:private")


def create_router() -> Router:
    """A fresh router each time: a router can belong to one dispatcher only."""
    router = Router(name="transport")
    router.channel_post.register(channel_post, FromEventChannel())
    router.message.register(private_source, F.chat.type == ChatType.PRIVATE, FromAllowedSource())
    return router
