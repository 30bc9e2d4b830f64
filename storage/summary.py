"""Small whole-store counts for the demo and health views (the owner's reports live in ``reports/``)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Client, StoredEvent


async def client_count(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(Client))).scalar_one())


async def event_count(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(StoredEvent))).scalar_one())
