"""The values that stopped linking because too many user ids carry them: for ``leadtrail identities``,
``leadtrail doctor`` and the owners' one notice about each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from storage.models import BlockedIdentity, IdentityLink


@dataclass(frozen=True, slots=True)
class SharedValue:
    kind: str  # crm, lead, phone
    value: str
    users: int  # user ids seen with it, now
    since: datetime  # when it stopped linking


def _shared_values() -> Select[Any]:
    users = (
        select(func.count())
        .where(IdentityLink.value == BlockedIdentity.value, IdentityLink.kind == BlockedIdentity.kind)
        .scalar_subquery()
    )
    blocked = BlockedIdentity
    return select(blocked.id, blocked.kind, blocked.value, users, blocked.blocked_at).order_by(
        blocked.blocked_at, blocked.id
    )


async def shared_values(session: AsyncSession) -> list[SharedValue]:
    """Every value that stopped linking, oldest first."""
    rows = await session.execute(_shared_values())
    return [SharedValue(kind, value, users, since) for _, kind, value, users, since in rows]


async def read_shared_values(url: str, connect_timeout: float = 10.0) -> list[SharedValue]:
    """``shared_values`` over one connection of its own (no pool, no pragmas, no migration): the doctor's."""
    engine = create_async_engine(url, poolclass=NullPool, connect_args={"timeout": connect_timeout})
    try:
        async with AsyncSession(engine) as session:
            return await shared_values(session)
    finally:
        await engine.dispose()


async def claim_unannounced(session: AsyncSession, now: datetime) -> list[SharedValue]:
    """The values the owners were not told about yet, marked told in the caller's transaction (which
    also queues the notice, so it is queued once)."""
    rows = (
        await session.execute(
            _shared_values().where(BlockedIdentity.notified_at.is_(None)).with_for_update(of=BlockedIdentity)
        )
    ).all()
    if rows:
        await session.execute(
            update(BlockedIdentity)
            .where(BlockedIdentity.id.in_([row[0] for row in rows]))
            .values(notified_at=now)
        )
    return [SharedValue(kind, value, users, since) for _, kind, value, users, since in rows]
