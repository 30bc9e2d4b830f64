"""The owners' audit log: who asked for what, and when."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import OwnerAudit

DETAILS_LIMIT = 500


async def record_action(
    sessions: async_sessionmaker[AsyncSession], owner_id: int, action: str, details: str | None = None
) -> None:
    async with sessions() as session, session.begin():
        session.add(
            OwnerAudit(
                at=datetime.now(UTC),
                owner_id=owner_id,
                action=action[:64],
                details=details[:DETAILS_LIMIT] if details else None,
            )
        )


async def recent_actions(session: AsyncSession, limit: int = 20) -> list[OwnerAudit]:
    result = await session.execute(select(OwnerAudit).order_by(OwnerAudit.id.desc()).limit(limit))
    return list(result.scalars())
