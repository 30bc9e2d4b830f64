"""Independent reads run side by side, each on its own connection, or in turn in one given session.

A report is a dozen aggregate queries that share nothing. SQLite in WAL mode lets several readers work
at once, and the driver runs each statement outside the GIL, so on two cores two connections take about
half the time of one; PostgreSQL runs each on its own backend. Each read sees its own snapshot: events
arriving meanwhile may show in one number and not yet in another, as between two reports a second apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

T = TypeVar("T")
Read = Callable[[AsyncSession], Awaitable[Any]]
# A session reads in turn (a caller's transaction); a factory gives each read a connection of its own.
SessionSource = AsyncSession | async_sessionmaker[AsyncSession]


async def read_alone(
    sessions: async_sessionmaker[AsyncSession], read: Callable[[AsyncSession], Awaitable[T]]
) -> T:
    async with sessions() as session:
        return await read(session)


async def gather_reads(source: SessionSource, reads: Sequence[Read]) -> list[Any]:
    """The results of ``reads`` in their order; the first failure is raised as it is."""
    if isinstance(source, AsyncSession):
        return [await read(source) for read in reads]
    return list(await asyncio.gather(*(read_alone(source, read) for read in reads)))


async def gather_for(source: SessionSource, calls: Sequence[Awaitable[Any]]) -> list[Any]:
    """Awaits ``calls`` that each read from ``source``: side by side for a factory, in turn for a session
    (one session must never run two statements at once)."""
    if isinstance(source, AsyncSession):
        return [await call for call in calls]
    return list(await asyncio.gather(*calls))
