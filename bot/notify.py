"""Telling the owners something without flooding them or stopping at the first who blocked the bot."""

from __future__ import annotations

import logging
import time

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramForbiddenError

logger = logging.getLogger(__name__)


async def notify_owners(bot: Bot, owners: list[int], text: str) -> int:
    """Send ``text`` to every owner; returns how many got it."""
    delivered = 0
    for owner in owners:
        try:
            await bot.send_message(owner, text)
            delivered += 1
        except TelegramForbiddenError:
            logger.warning("owner %s has blocked the bot; notice not delivered", owner)
        except TelegramAPIError as exc:
            logger.warning("notice to owner %s failed: %s", owner, type(exc).__name__)
    return delivered


class NoticeThrottle:
    """At most one notice per interval; what was held back is counted into the next one."""

    def __init__(self, interval_seconds: float) -> None:
        self._interval = interval_seconds
        self._last: float | None = None
        self.suppressed = 0

    def allow(self) -> bool:
        now = time.monotonic()
        if self._last is not None and now - self._last < self._interval:
            self.suppressed += 1
            return False
        self._last = now
        return True

    def take_suppressed(self) -> int:
        count, self.suppressed = self.suppressed, 0
        return count
