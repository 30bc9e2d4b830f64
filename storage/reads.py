"""Independent reads run side by side, each on its own connection, or in turn in one given session.

A report's two periods and its charts' queries share nothing. SQLite in WAL mode lets several readers
work at once and the driver runs each statement outside the GIL, though its sorts gain only about 1.4
times from a second thread (two processes gain 1.75): a few reads side by side pay, many do not.
PostgreSQL runs each on its own backend. Each read sees its own snapshot: events arriving meanwhile may
show in one number and not yet in another, as between two reports a second apart.
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
