"""Dialogs and leads per assistant scenario in a period, for the A/B section of the report.

A client counts once, for the scenario of their first event in the period that carries one (the
scenario they met first), and as converted when they also have a lead_created in the period — the
same dialog→lead definition as the report.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.event_types import EventType
from storage.models import StoredEvent

events = StoredEvent.__table__


async def scenario_conversions(
    session: AsyncSession, start: datetime, end: datetime, location: str | None = None
) -> list[tuple[str, int, int]]:
    """[(scenario, dialogs, leads)] ordered by scenario."""
    in_period = [events.c.ts >= start, events.c.ts < end]
    if location is not None:
        in_period.append(events.c.location == location)
    wrote = (
        select(events.c.user_id)
        .where(events.c.event == EventType.MESSAGE_RECEIVED, *in_period)
        .distinct()
        .subquery("wrote")
    )
    first_seen = func.row_number().over(partition_by=events.c.user_id, order_by=(events.c.ts, events.c.id))
    exposures = (
        select(events.c.user_id, events.c.scenario, first_seen.label("exposure"))
        .where(events.c.scenario.is_not(None), *in_period)
        .subquery("exposures")
    )
    assigned = (
        select(exposures.c.user_id, exposures.c.scenario)
        .where(exposures.c.exposure == 1)
        .subquery("assigned")
    )
    led = (
        select(events.c.user_id)
        .where(events.c.event == EventType.LEAD_CREATED, *in_period)
        .distinct()
        .subquery("led")
    )
    statement = (
        select(assigned.c.scenario, func.count(), func.count(led.c.user_id))
        .select_from(wrote.join(assigned, assigned.c.user_id == wrote.c.user_id))
        .outerjoin(led, and_(led.c.user_id == wrote.c.user_id))
        .group_by(assigned.c.scenario)
        .order_by(assigned.c.scenario)
    )
    return [
        (scenario, int(dialogs), int(leads)) for scenario, dialogs, leads in await session.execute(statement)
    ]
