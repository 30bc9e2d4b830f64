"""Delivering the outbox to Telegram (and e-mail): retried until sent, one recipient never blocks another."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramRetryAfter,
)
from aiogram.types import InlineKeyboardMarkup

from bot.background import cancel_and_wait
from bot.telegram.media import photo_albums
from bot.telegram.views.followup import outbox_keyboard
from reports.texts.html import CAPTION_LIMIT, pack_lines
from storage.database import Database, StorageUnavailable
from storage.outbox import Delivery, due_deliveries, mark_failed, mark_retry, mark_sent

logger = logging.getLogger(__name__)

MAX_RETRY_DELAY = timedelta(minutes=10)
EmailSend = Callable[[Delivery], Awaitable[None]]


class BotNotConnected(Exception):
    """Telegram is not reachable yet; the message waits in the outbox."""


class PermanentFailure(Exception):
    """Retrying will not help (the owner blocked the bot, a wrong address): record why and move on."""


def retry_delay(attempts: int) -> timedelta:
    base = min(5.0 * 2**attempts, MAX_RETRY_DELAY.total_seconds())
    return timedelta(seconds=base * random.uniform(0.5, 1.0))


async def _send_text(bot: Bot, chat_id: int, text: str, keyboard: InlineKeyboardMarkup | None) -> None:
    """The text in as few messages as fit, the buttons under the last one."""
    chunks = pack_lines(text.split("\n"))
    for number, chunk in enumerate(chunks, start=1):
        await bot.send_message(chat_id, chunk, reply_markup=keyboard if number == len(chunks) else None)


async def send_to_telegram(bot: Bot, delivery: Delivery) -> None:
    """The text, then the charts; a short text rides as the album's caption instead. With buttons (which
    an album cannot carry) the charts go first and the text with its buttons after them, so a retry after
    a failed album does not repeat the text."""
    chat_id = int(delivery.recipient)
    keyboard = outbox_keyboard(delivery.keyboard, delivery.client_id)
    as_caption = bool(delivery.attachments) and len(delivery.text) <= CAPTION_LIMIT and keyboard is None
    if not as_caption and keyboard is None:
        await _send_text(bot, chat_id, delivery.text, None)
    albums = photo_albums(delivery.attachments, delivery.text if as_caption else None)
    for album in albums:
        if len(album) == 1:
            await bot.send_photo(chat_id, album[0].media, caption=album[0].caption)
        else:
            await bot.send_media_group(chat_id, media=album)
    if keyboard is not None:
        await _send_text(bot, chat_id, delivery.text, keyboard)


class DeliveryWorker:
    """Sends due outbox messages every few seconds, or right away when woken after an enqueue."""

    def __init__(
        self,
        db: Database,
        bot: Callable[[], Bot | None],
        *,
        send_email: EmailSend | None = None,
        interval_seconds: float = 5.0,
    ) -> None:
        self._db = db
        self._bot = bot
        self._send_email = send_email
        self._interval = interval_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="delivery")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _run(self) -> None:
        while True:
            try:
                await self.deliver_due()
            except StorageUnavailable as exc:
                logger.warning("delivery: storage unavailable (%s); will retry", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()

    async def deliver_due(self) -> int:
        """Try every message that is due now; returns how many were sent."""
        async with self._db.sessions() as session:
            deliveries = await due_deliveries(session, datetime.now(UTC))
        sent = 0
        for delivery in deliveries:
            sent += await self._deliver(delivery)
        return sent

    async def _deliver(self, delivery: Delivery) -> int:
        try:
            await self._send(delivery)
        except PermanentFailure as exc:
            logger.warning(
                "delivery %s to a %s recipient failed for good: %s", delivery.id, delivery.channel, exc
            )
            await self._record(mark_failed, delivery.id, str(exc))
            return 0
        except TelegramRetryAfter as exc:
            await self._record(mark_retry, delivery.id, timedelta(seconds=exc.retry_after), "429 retry after")
            return 0
        except (TelegramAPIError, BotNotConnected, OSError, TimeoutError) as exc:
            await self._record(mark_retry, delivery.id, retry_delay(delivery.attempts), type(exc).__name__)
            return 0
        await self._record(mark_sent, delivery.id)
        return 1

    async def _send(self, delivery: Delivery) -> None:
        if delivery.channel == "email":
            if self._send_email is None:
                raise PermanentFailure("e-mail is not configured")
            await self._send_email(delivery)
            return
        bot = self._bot()
        if bot is None:
            raise BotNotConnected
        try:
            await send_to_telegram(bot, delivery)
        except TelegramForbiddenError as exc:
            raise PermanentFailure(f"the owner blocked the bot: {exc.message}") from exc
        except TelegramBadRequest as exc:
            raise PermanentFailure(f"Telegram refused the message: {exc.message}") from exc

    async def _record(self, mark: Callable[..., Awaitable[None]], *args: object) -> None:
        async with self._db.sessions() as session, session.begin():
            await mark(session, *args)
