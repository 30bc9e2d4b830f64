"""Events that arrive through Telegram: JSON in a post or a private message, or an attached file.

For sources that can only talk Telegram: a private channel where the LeadTrail bot is an admin, or a
source bot (or person) allowed in ``telegram.source_bots`` / ``telegram.source_users``.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiogram import Bot
from aiogram.types import Message

from bot.ingestion.payloads import UndecodableBody, decode_json, decode_ndjson
from bot.ingestion.pipeline import IngestOutcome, ingest_items
from bot.ingestion.validation import FieldError
from bot.notify import NoticeThrottle, notify_owners
from bot.settings import Settings
from reports.texts import faults
from storage.database import StorageUnavailable
from storage.writer import EventWriter, Rejected

logger = logging.getLogger(__name__)

T = TypeVar("T")
DOCUMENT_SUFFIXES = (".json", ".ndjson", ".jsonl")
STORAGE_RETRY_DELAYS = (1, 2, 5, 10, 30, 60, 120)


class NotAnEventMessage(ValueError):
    """The message carries neither JSON text nor a .json/.ndjson file."""


def decode_text(text: str) -> list[Any]:
    """One event or an array; several lines that are not one JSON value are read as NDJSON."""
    body = text.strip().encode()
    try:
        return decode_json(body)
    except UndecodableBody:
        if b"\n" not in body:
            raise
        return decode_ndjson(body)


async def read_message_items(bot: Bot, message: Message, max_bytes: int) -> list[Any]:
    document = message.document
    if document is not None:
        name = (document.file_name or "").lower()
        if not name.endswith(DOCUMENT_SUFFIXES):
            raise NotAnEventMessage(f"file {document.file_name!r} is not .json or .ndjson")
        if document.file_size is not None and document.file_size > max_bytes:
            raise UndecodableBody(f"file is over {max_bytes} bytes (ingest.max_body_bytes)")
        buffer = io.BytesIO()
        await bot.download(document, destination=buffer)
        content = buffer.getvalue()
        return decode_json(content) if name.endswith(".json") else decode_ndjson(content)
    text = message.text or message.caption
    if not text:
        raise NotAnEventMessage("message has no text")
    return decode_text(text)


@dataclass
class TelegramSourceService:
    """Stores what Telegram sources send and tells the owners, rarely, when something was rejected."""

    settings: Settings
    writer: EventWriter
    throttle: NoticeThrottle

    async def ingest_message(self, bot: Bot, message: Message, source: str) -> IngestOutcome:
        try:
            items = await read_message_items(bot, message, self.settings.ingest.max_body_bytes)
        except (UndecodableBody, NotAnEventMessage) as exc:
            payload = (
                message.text or message.caption or (message.document.file_name if message.document else "")
            )
            rejected = Rejected(
                source=source, payload=payload or "", errors=[{"field": None, "message": str(exc)}]
            )
            await self._store(lambda: self.writer.write([], [rejected]))
            outcome = IngestOutcome(errors=[FieldError(0, None, str(exc))])
        else:
            outcome = await self._store(
                lambda: ingest_items(
                    items, self.writer, self.settings.tz, source=source, prices=self.settings.ai.price_table()
                )
            )
        if outcome.errors:
            logger.warning(
                "telegram source %s: %d rejected, %d accepted", source, outcome.rejected, outcome.accepted
            )
            await self._notice(bot, outcome)
        return outcome

    async def _store(self, attempt: Callable[[], Awaitable[T]]) -> T:
        # Telegram will not deliver this update again, so wait for storage rather than drop the events.
        for delay in (*STORAGE_RETRY_DELAYS, None):
            try:
                return await attempt()
            except StorageUnavailable:
                if delay is None:
                    raise
                logger.error("storage unavailable for a Telegram source message; retrying in %s s", delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _notice(self, bot: Bot, outcome: IngestOutcome) -> None:
        if not self.throttle.allow():
            return
        held_back = self.throttle.take_suppressed()
        text = faults.source_rejected_notice(outcome.accepted, outcome.rejected, held_back)
        await notify_owners(bot, self.settings.telegram.owners, text)
