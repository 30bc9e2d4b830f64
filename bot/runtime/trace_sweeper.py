"""Releases the OTLP model calls that waited for their trace's user, every few seconds of ``leadtrail run``.

Every process sweeps (the waiting calls are in the shared database, and releasing one twice stores it
once), so a call never depends on which process answered its request, nor on a restart: the first sweep
after a start releases what waited across it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError

from bot.background import cancel_and_wait
from bot.ingestion.trace_wait import TraceWaiter
from storage.database import StorageUnavailable

logger = logging.getLogger(__name__)

SHORTEST_INTERVAL, LONGEST_INTERVAL = 0.5, 5.0


class TraceSweeper:
    def __init__(self, waiter: TraceWaiter) -> None:
        self.waiter = waiter
        # A quarter of the wait: a call is released within a quarter of ai.trace_wait_seconds after it.
        seconds = waiter.wait.total_seconds() / 4
        self.interval = min(max(seconds, SHORTEST_INTERVAL), LONGEST_INTERVAL)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="trace-sweeper")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _run(self) -> None:
        while True:
            try:
                if released := await self.waiter.release_due(datetime.now(UTC)):
                    logger.info(
                        "otlp: released %d model call(s) that waited for their trace's user", released
                    )
            except (StorageUnavailable, SQLAlchemyError, OSError) as exc:
                # Storage trouble: the calls keep waiting in the database; the next sweep tries again.
                logger.warning("otlp: waiting model calls not released now: %s", type(exc).__name__)
            await asyncio.sleep(self.interval)
