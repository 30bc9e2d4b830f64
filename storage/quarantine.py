"""Reading the quarantine of rejected payloads."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import QuarantinedPayload


async def recent_rejections(session: AsyncSession, limit: int = 20) -> list[QuarantinedPayload]:
    result = await session.execute(
        select(QuarantinedPayload).order_by(QuarantinedPayload.id.desc()).limit(limit)
    )
    return list(result.scalars())


async def count_rejections(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(QuarantinedPayload))).scalar_one())
