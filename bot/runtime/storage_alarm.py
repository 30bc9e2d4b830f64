"""Telling the owners that events cannot be stored, and again when they can.

The outbox lives in the database, and the database is what is failing, so these two notices go straight
through the bot. One outage makes one "failing" and one "recovered" message however long it lasts, and a
storage that keeps flapping says "failing" at most once per ``telegram.notice_interval_minutes``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramForbiddenError

from bot.background import cancel_and_wait
from reports.texts import faults
from storage.writer import EventWriter

logger = logging.getLogger(__name__)


class StorageAlarm:
    def __init__(
        self,
        writer: EventWriter,
        owners: list[int],
        bot: Callable[[], Bot | None],
        *,
        after_seconds: float,
        repeat_seconds: float,
        check_seconds: float = 1.0,
    ) -> None:
        self._writer = writer
        self._owners = owners
        self._bot = bot
        self._after = after_seconds
        self._repeat = repeat_seconds
        self._check = check_seconds
        self._announced = False  # the owners were told "failing" and not yet "recovered"
        self._last_alarm: float | None = None
        self._reached: set[int] = set()  # owners who already have the notice being sent
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="storage-alarm")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _run(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self._check)

    async def check(self) -> None:
        """Compare the writer's state with what the owners were told; send what is owed."""
        now = asyncio.get_running_loop().time()
        since = self._writer.failing_since
        failing = since is not None and now - since >= self._after
        if failing and not self._announced:
            if self._last_alarm is not None and now - self._last_alarm < self._repeat:
                return  # flapping: the owners heard about it a moment ago
            if await self._send(faults.STORAGE_FAILING):
                self._announced, self._last_alarm = True, now
                logger.warning("storage alarm: owners told that events cannot be stored")
        elif since is None and self._announced and await self._send(faults.STORAGE_RECOVERED):
            self._announced = False
            logger.info("storage alarm: owners told that storing works again")

    async def _send(self, text: str) -> bool:
        """True once every owner got ``text`` or refused it for good; False means try again later."""
        bot = self._bot()
        if bot is None:
            return False
        for owner in self._owners:
            if owner in self._reached:
                continue
            try:
                await bot.send_message(owner, text)
            except (TelegramForbiddenError, TelegramBadRequest) as exc:
                logger.warning("storage alarm to owner %s not delivered: %s", owner, type(exc).__name__)
            except (TelegramAPIError, OSError, TimeoutError) as exc:
                logger.warning("storage alarm: Telegram failed (%s); will retry", type(exc).__name__)
                return False
            self._reached.add(owner)
        self._reached.clear()
        return True
