"""Where the follow-up lists stand at a moment: read from storage, then made by the pure rules.

``leadtrail followup``, ``/followup``, the morning report's line and the ``unanswered`` alert all ask this,
so they never disagree.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from reports.followup import FollowupLists, FollowupSettings, compose, windows
from storage.followup_queries import load_followup_inputs


async def followup_at(
    sessions: async_sessionmaker[AsyncSession],
    now: datetime,
    settings: FollowupSettings,
    location: str | None = None,
) -> FollowupLists:
    """The four lists at ``now`` (aware); only events at ``location`` put a client on them, when given."""
    if now.tzinfo is None:
        raise ValueError("followup_at needs an aware moment; read naive input in the configured zone first")
    async with sessions() as session:
        inputs = await load_followup_inputs(session, windows(settings, now.astimezone(UTC)), location)
    return compose(inputs)
