"""Keeping a connector under its server's request rate, so bursts never reach the server's limit."""

from __future__ import annotations

import asyncio
import time


class LeakyBucket:
    """Spaces calls at least ``1 / rate`` seconds apart, so bursts never reach the server's limit."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            now = time.monotonic()
            delay = self._next - now
            if delay > 0:
                await asyncio.sleep(delay)
            self._next = max(now, self._next) + self._interval

    def pause(self, seconds: float) -> None:
        """Push the next slot further out (after the server said we were too fast)."""
        self._next = max(self._next, time.monotonic() + seconds)
