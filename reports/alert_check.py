"""Where every alert rule stands at a moment: its inputs read from storage, then judged by the pure rules.

The scheduler's check, ``/alerts`` and ``leadtrail alerts check`` all ask this, so they never disagree.
The ``unanswered`` rule reads the follow-up list of the same moment (``reports.followup_check``).
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from reports.alerts import AiBudget, AlertSettings, AlertVerdict, evaluate_all
from reports.followup import FollowupSettings
from reports.followup_check import followup_at
from storage.alert_queries import gather_inputs
from storage.followup_items import ListKind


async def verdicts_at(
    sessions: async_sessionmaker[AsyncSession],
    now: datetime,
    zone: tzinfo,
    settings: AlertSettings,
    sla_seconds: float,
    followup: FollowupSettings,
    budget: AiBudget | None = None,
) -> list[AlertVerdict]:
    """Every rule's verdict at ``now`` (aware), firing or not; nothing is sent or stored."""
    async with sessions() as session:
        inputs = await gather_inputs(session, now, zone, silence_hours=settings.silence_hours)
    lists = await followup_at(sessions, now, followup)
    return evaluate_all(inputs, settings, sla_seconds, lists.lists[ListKind.UNANSWERED], budget)
