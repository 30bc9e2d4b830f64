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

from bot.ingestion.trace_wait import TraceWaiter
from storage.database import StorageUnavailable

logger = logging.getLogger(__name__)

SHORTEST_INTERVAL, LONGEST_INTERVAL = 0.5, 5.0


def sweep_interval(waiter: TraceWaiter) -> float:
    """A quarter of the wait (a call is released at most that long after its wait is over), in bounds."""
    return min(max(waiter.wait.total_seconds() / 4, SHORTEST_INTERVAL), LONGEST_INTERVAL)


async def sweep_waiting_calls(waiter: TraceWaiter) -> None:
    """Run until cancelled (``bot.background.cancel_and_wait``)."""
    interval = sweep_interval(waiter)
    while True:
        try:
            if released := await waiter.release_due(datetime.now(UTC)):
                logger.info("otlp: released %d model call(s) that waited for their trace's user", released)
        except (StorageUnavailable, SQLAlchemyError, OSError) as exc:
            # Storage trouble: the calls keep waiting in the database; the next sweep tries again.
            logger.warning("otlp: waiting model calls not released now: %s", type(exc).__name__)
        await asyncio.sleep(interval)
