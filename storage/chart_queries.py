"""Aggregations behind the report charts, portable to SQLite and PostgreSQL.

Grouping by local day or hour joins the events to a list of time buckets worked out in Python from the
zone's data: the UTC bounds of each local day, or of each local hour (split where the UTC offset
changes). Each bucket is a range of ``ix_events_event_ts``, so the database reads the period's entries
once and never computes a local time per event; the result is exact for any zone, DST and half-hour
offsets included, and it lets the database count distinct clients per local day.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import (
    ARRAY,
    ColumnElement,
    DateTime,
    Integer,
    String,
    Table,
    and_,
    bindparam,
    case,
    column,
    distinct,
    func,
    literal,
    null,
    select,
    text,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import CTE

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
from storage.models import Client, StoredEvent, sqlite_datetime
from storage.report_queries import events_between

MESSAGE = "message_received"
LEAD = "lead_created"
BOOKING = "appointment_booked"
PAYMENT = "payment_status"
NO_SHOW = "no_show"
REFUSAL = "refusal"
WRITERS = "writers"  # the trend's per-user counts, beside the event names
Bucket = tuple[datetime, datetime]  # UTC, [start, end)

events = cast(Table, StoredEvent.__table__)

# Zone transitions are months apart; probing every few hours cannot step over two of them.
_OFFSET_PROBE = timedelta(hours=6)


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


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), zone).astimezone(UTC)


def local_day_buckets(start_utc: datetime, end_utc: datetime, zone: ZoneInfo) -> list[tuple[date, Bucket]]:
    """Each local day of ``[start_utc, end_utc)`` with its UTC bounds (a DST day is 23 or 25 hours)."""
    days = ChartPeriod.from_utc(start_utc, end_utc, zone).days()
    return [
        (
            day,
            (
                max(start_utc, _local_midnight(day, zone)),
                min(end_utc, _local_midnight(day + timedelta(days=1), zone)),
            ),
        )
        for day in days
    ]


def local_hour_buckets(
    start_utc: datetime, end_utc: datetime, zone: ZoneInfo
) -> list[tuple[tuple[int, int], Bucket]]:
    """(local weekday, local hour) of each stretch of ``[start_utc, end_utc)`` that has one of each."""
    switches = [moment for moment, _ in offset_spans(start_utc, end_utc, zone)[1:]]
    buckets = []
    moment = start_utc
    while moment < end_utc:
        local = moment.astimezone(zone)
        next_hour = moment + timedelta(
            minutes=60 - local.minute, seconds=-local.second, microseconds=-local.microsecond
        )
        until = min([next_hour, end_utc, *(switch for switch in switches if switch > moment)])
        buckets.append(((local.weekday(), local.hour), (moment, until)))
        moment = until
    return buckets


def _buckets(dialect: str, bounds: Sequence[Bucket]) -> CTE:
    """The buckets as a table (n, s, e) from one bound parameter, whatever their number."""
    if dialect == "sqlite":
        # Bounds in the stored text form, so they compare with ts as text, as the index is ordered.
        table = text(
            "SELECT CAST(key AS INTEGER) AS n, json_extract(value, '$[0]') AS s,"
            " json_extract(value, '$[1]') AS e FROM json_each(:buckets)"
        ).bindparams(
            buckets=orjson.dumps(
                [[sqlite_datetime(low), sqlite_datetime(high)] for low, high in bounds]
            ).decode()
        )
        return table.columns(column("n", Integer), column("s", String), column("e", String)).cte("buckets")
    moments = ARRAY(DateTime(timezone=True))
    table = text(
        "SELECT CAST(b.n - 1 AS integer) AS n, b.s, b.e FROM"
        " unnest(CAST(:starts AS timestamptz[]), CAST(:ends AS timestamptz[])) WITH ORDINALITY AS b(s, e, n)"
    ).bindparams(
        bindparam("starts", [low for low, _ in bounds], type_=moments),
        bindparam("ends", [high for _, high in bounds], type_=moments),
    )
    moment = DateTime(timezone=True)
    return table.columns(column("n", Integer), column("s", moment), column("e", moment)).cte("buckets")


def _in_bucket(buckets: CTE, names: Sequence[str], location: str | None) -> ColumnElement[bool]:
    return events_between(events, names, buckets.c.s, buckets.c.e, location)


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
    ).where(events_between(events, [MESSAGE, LEAD, BOOKING, PAYMENT, NO_SHOW], start_utc, end_utc, location))
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
    days = local_day_buckets(start_utc, end_utc, zone)
    buckets = _buckets(_dialect(session), [bounds for _, bounds in days])
    day_users = (
        select(
            buckets.c.n,
            func.max(case((events.c.event == MESSAGE, 1), else_=0)).label("wrote"),
            func.max(case((events.c.event == LEAD, 1), else_=0)).label("applied"),
        )
        .select_from(buckets.join(events, _in_bucket(buckets, [MESSAGE, LEAD], location)))
        .group_by(buckets.c.n, events.c.user_id)
        .subquery("day_users")
    )
    counted = buckets.join(events, _in_bucket(buckets, [LEAD, BOOKING], location))
    # The parts differ in column types, which the typing of union_all does not allow for.
    writers: Any = select(
        day_users.c.n,
        literal(WRITERS),
        func.sum(day_users.c.wrote),
        func.sum(day_users.c.wrote * day_users.c.applied),
    ).group_by(day_users.c.n)
    events_per_day: Any = (
        select(buckets.c.n, events.c.event, func.count(), null())
        .select_from(counted)
        .group_by(buckets.c.n, events.c.event)
    )
    found: dict[tuple[int, str], tuple[int, int]] = {
        (int(n), str(kind)): (int(first), int(second or 0))
        for n, kind, first, second in await session.execute(union_all(writers, events_per_day))
    }
    counts = []
    for n, (day, _) in enumerate(days):  # every day of the period, quiet ones as zeros
        wrote, wrote_and_applied = found.get((n, WRITERS), (0, 0))
        leads, bookings = found.get((n, LEAD), (0, 0))[0], found.get((n, BOOKING), (0, 0))[0]
        counts.append(DayCounts(day, wrote, leads, bookings, wrote_and_applied))
    return DailyTrend(period, tuple(counts))


async def heatmap_data(
    session: AsyncSession,
    start_utc: datetime,
    end_utc: datetime,
    zone: ZoneInfo,
    location: str | None = None,
) -> WeekHourHeatmap:
    """Client messages and refusals per local weekday × hour, from at most one row per hour and kind."""
    period = ChartPeriod.from_utc(start_utc, end_utc, zone, location)
    hours = local_hour_buckets(start_utc, end_utc, zone)
    buckets = _buckets(_dialect(session), [bounds for _, bounds in hours])
    statement = (
        select(buckets.c.n, events.c.event, func.count())
        .select_from(buckets.join(events, _in_bucket(buckets, [MESSAGE, REFUSAL], location)))
        .group_by(buckets.c.n, events.c.event)
    )
    grids = {MESSAGE: empty_grid(), REFUSAL: empty_grid()}
    for n, event, count in await session.execute(statement):
        weekday, hour = hours[int(n)][0]
        grids[event][weekday][hour] += int(count)
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
