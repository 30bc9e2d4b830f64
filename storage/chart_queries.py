"""Aggregations behind the report charts, portable to SQLite and PostgreSQL.

Grouping by local day or hour happens in the database on the event time shifted by the zone's UTC
offset. The offset is taken from Python's zone data for each stretch of the period (usually one; more
only across a DST change), so the result is exact for any zone, half-hour offsets included, and it lets
the database count distinct clients per local day, which per-UTC-hour buckets could not.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Date, and_, case, cast, distinct, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from reports.chart_data import (
    ChartPeriod,
    ClientJourney,
    DailyTrend,
    DayCounts,
    FunnelData,
    JourneyEvent,
    WeekHourHeatmap,
    empty_grid,
    freeze_grid,
)
from storage.models import Client, StoredEvent

MESSAGE = "message_received"
LEAD = "lead_created"
BOOKING = "appointment_booked"
PAYMENT = "payment_status"
NO_SHOW = "no_show"
REFUSAL = "refusal"

# Zone transitions are months apart; probing every few hours cannot step over two of them.
_OFFSET_PROBE = timedelta(hours=6)


def _in_period(start_utc: datetime, end_utc: datetime, location: str | None) -> list[ColumnElement[bool]]:
    conditions = [StoredEvent.ts >= start_utc, StoredEvent.ts < end_utc]
    if location is not None:
        conditions.append(StoredEvent.location == location)
    return conditions


def _offset(moment: datetime, zone: ZoneInfo) -> timedelta:
    offset = moment.astimezone(zone).utcoffset()
    assert offset is not None  # a ZoneInfo always knows its offset for an aware moment
    return offset


def offset_spans(start_utc: datetime, end_utc: datetime, zone: ZoneInfo) -> list[tuple[datetime, timedelta]]:
    """Stretches of ``[start_utc, end_utc)`` with one UTC offset each: (where it starts, the offset)."""
    spans = [(start_utc, _offset(start_utc, zone))]
    probe = start_utc
    while probe < end_utc:
        step_end = min(probe + _OFFSET_PROBE, end_utc)
        if _offset(step_end, zone) != spans[-1][1]:
            # The offset changes in (probe, step_end]; zone data switch on a whole second, so search those.
            low, high = math.floor(probe.timestamp()), math.ceil(step_end.timestamp())
            while high - low > 1:
                middle = (low + high) // 2
                if _offset(datetime.fromtimestamp(middle, UTC), zone) == spans[-1][1]:
                    low = middle
                else:
                    high = middle
            switch = datetime.fromtimestamp(high, UTC)
            if switch < end_utc:
                spans.append((switch, _offset(switch, zone)))
        probe = step_end
    return spans


def _sqlite_modifier(offset: timedelta) -> str:
    return f"{int(offset.total_seconds()) // 60:+d} minutes"


def _postgres_interval(offset: timedelta) -> ColumnElement[Any]:
    return literal_column(f"interval '{int(offset.total_seconds()) // 60} minutes'")


def _shift(spans: list[tuple[datetime, timedelta]], as_sql: Callable[[timedelta], Any]) -> Any:
    """The offset to add to ``ts``, as one value or a CASE over the period's offset stretches."""
    if len(spans) == 1:
        return as_sql(spans[0][1])
    whens = [
        (StoredEvent.ts < next_start, as_sql(offset)) for (_, offset), (next_start, _) in pairwise(spans)
    ]
    return case(*whens, else_=as_sql(spans[-1][1]))


def _local_day(dialect: str, spans: list[tuple[datetime, timedelta]]) -> ColumnElement[Any]:
    if dialect == "sqlite":
        return func.date(StoredEvent.ts, _shift(spans, _sqlite_modifier))
    local = func.timezone(literal_column("'UTC'"), StoredEvent.ts) + _shift(spans, _postgres_interval)
    return cast(local, Date)


def _local_hour(dialect: str, spans: list[tuple[datetime, timedelta]]) -> ColumnElement[Any]:
    if dialect == "sqlite":
        return func.strftime("%Y-%m-%d %H", StoredEvent.ts, _shift(spans, _sqlite_modifier))
    local = func.timezone(literal_column("'UTC'"), StoredEvent.ts) + _shift(spans, _postgres_interval)
    return func.date_trunc("hour", local)


def _as_date(value: date | str) -> date:
    return date.fromisoformat(value) if isinstance(value, str) else value


def _as_hour(value: datetime | str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%d %H") if isinstance(value, str) else value


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def funnel_data(
    session: AsyncSession,
    start_utc: datetime,
    end_utc: datetime,
    zone: ZoneInfo,
    location: str | None = None,
) -> FunnelData:
    """Clients (distinct writers) and event counts of leads, bookings, paid payments and no-shows."""
    period = ChartPeriod.from_utc(start_utc, end_utc, zone, location)
    event = StoredEvent.event
    statement = select(
        func.count(distinct(case((event == MESSAGE, StoredEvent.user_id)))),
        func.count(case((event == LEAD, 1))),
        func.count(case((event == BOOKING, 1))),
        func.count(case((and_(event == PAYMENT, StoredEvent.status == "paid"), 1))),
        func.count(case((event == NO_SHOW, 1))),
    ).where(event.in_([MESSAGE, LEAD, BOOKING, PAYMENT, NO_SHOW]), *_in_period(start_utc, end_utc, location))
    clients, leads, bookings, paid, no_shows = (await session.execute(statement)).one()
    return FunnelData(period, int(clients), int(leads), int(bookings), int(paid), int(no_shows))


async def daily_trend_data(
    session: AsyncSession,
    start_utc: datetime,
    end_utc: datetime,
    zone: ZoneInfo,
    location: str | None = None,
) -> DailyTrend:
    """Per local day: distinct writers, leads, bookings, and writers who also left a lead that day.

    Every day of the period is present, quiet days as zeros, so the bars keep a regular calendar.
    """
    period = ChartPeriod.from_utc(start_utc, end_utc, zone, location)
    day = _local_day(_dialect(session), offset_spans(start_utc, end_utc, zone)).label("local_day")
    event = StoredEvent.event
    per_client_day = (
        select(
            day,
            func.max(case((event == MESSAGE, 1), else_=0)).label("wrote"),
            func.max(case((event == LEAD, 1), else_=0)).label("applied"),
            func.count(case((event == LEAD, 1))).label("leads"),
            func.count(case((event == BOOKING, 1))).label("bookings"),
        )
        .where(event.in_([MESSAGE, LEAD, BOOKING]), *_in_period(start_utc, end_utc, location))
        # By label: PostgreSQL would not match two copies of an expression carrying bound parameters.
        .group_by("local_day", StoredEvent.user_id)
        .subquery()
    )
    statement = select(
        per_client_day.c.local_day,
        func.sum(per_client_day.c.wrote),
        func.sum(per_client_day.c.wrote * per_client_day.c.applied),
        func.sum(per_client_day.c.leads),
        func.sum(per_client_day.c.bookings),
    ).group_by(per_client_day.c.local_day)
    found = {
        _as_date(local_day): DayCounts(_as_date(local_day), int(wrote), int(leads), int(bookings), int(both))
        for local_day, wrote, both, leads, bookings in await session.execute(statement)
    }
    days = tuple(found.get(d, DayCounts(d, 0, 0, 0, 0)) for d in period.days())
    return DailyTrend(period, days)


async def heatmap_data(
    session: AsyncSession,
    start_utc: datetime,
    end_utc: datetime,
    zone: ZoneInfo,
    location: str | None = None,
) -> WeekHourHeatmap:
    """Client messages and refusals per local weekday × hour, from at most 24 rows per day and kind."""
    period = ChartPeriod.from_utc(start_utc, end_utc, zone, location)
    hour = _local_hour(_dialect(session), offset_spans(start_utc, end_utc, zone)).label("local_hour")
    statement = (
        select(StoredEvent.event, hour, func.count())
        .where(StoredEvent.event.in_([MESSAGE, REFUSAL]), *_in_period(start_utc, end_utc, location))
        .group_by(StoredEvent.event, "local_hour")
    )
    grids = {MESSAGE: empty_grid(), REFUSAL: empty_grid()}
    for event, bucket, count in await session.execute(statement):
        local = _as_hour(bucket)
        grids[event][local.weekday()][local.hour] += int(count)
    return WeekHourHeatmap(period, freeze_grid(grids[MESSAGE]), freeze_grid(grids[REFUSAL]))


async def journey_data(session: AsyncSession, client_id: int, zone: ZoneInfo) -> ClientJourney:
    """Every event of one client, oldest first, in local time; a refusal carries its reason (else intent)."""
    name = (await session.execute(select(Client.name).where(Client.id == client_id))).scalar_one_or_none()
    statement = (
        select(StoredEvent.ts, StoredEvent.event, StoredEvent.reason, StoredEvent.intent)
        .where(StoredEvent.client_id == client_id)
        .order_by(StoredEvent.ts, StoredEvent.id)
    )
    events = tuple(
        JourneyEvent(ts.astimezone(zone), event, (reason or intent) if event == REFUSAL else None)
        for ts, event, reason, intent in await session.execute(statement)
    )
    return ClientJourney(client_id, name, events)
