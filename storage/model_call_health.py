"""What ``leadtrail doctor`` says about the model calls: which models went unpriced, and how many calls no
trace named a user for. Read once, without a pool and without changing anything, like
``storage.schema_status``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from storage.models import StoredEvent
from storage.pending_spans import UNATTRIBUTED_USER

events = StoredEvent.__table__


@dataclass(frozen=True, slots=True)
class ModelCallHealth:
    calls: int
    unpriced: list[tuple[str, int]]  # model, calls without a cost; most calls first
    unattributed: int


async def _read(conn: AsyncConnection, since: datetime) -> ModelCallHealth:
    recent = [events.c.model.is_not(None), events.c.ts >= since]
    calls, unattributed = (
        await conn.execute(
            select(func.count(), func.count().filter(events.c.user_id == UNATTRIBUTED_USER)).where(*recent)
        )
    ).one()
    unpriced = await conn.execute(
        select(events.c.model, func.count())
        .where(*recent, events.c.cost.is_(None))
        .group_by(events.c.model)
        .order_by(func.count().desc(), events.c.model)
    )
    return ModelCallHealth(
        int(calls), [(str(model), int(count)) for model, count in unpriced], int(unattributed)
    )


async def model_call_health(url: str, since: datetime, connect_timeout: float = 10.0) -> ModelCallHealth:
    """The model calls stored since ``since``; raises what the driver raises when the database is away."""
    engine = create_async_engine(url, poolclass=NullPool, connect_args={"timeout": connect_timeout})
    try:
        async with engine.connect() as conn:
            return await _read(conn, since)
    finally:
        await engine.dispose()
