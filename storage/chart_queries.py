"""Aggregations behind the report charts, portable to SQLite and PostgreSQL (the funnel and answer-time
charts need none: they are drawn from the report's own numbers).

Grouping by local day or hour joins the events to a list of time buckets worked out in Python from the
zone's data (``storage.local_time``): the UTC bounds of each local day, or of each local hour (split
where the UTC offset changes). Each bucket is a range of ``ix_events_event_ts``, so the database reads
the period's entries once and never computes a local time per event; the result is exact for any zone,
DST and half-hour offsets included, and it lets the database count distinct clients per local day.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
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
    func,
    literal,
    null,
    select,
    text,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import CTE

from storage.aggregates import ClientJourney, DayCounts, JourneyEvent, WeekHourCounts, empty_grid, freeze_grid
from storage.bookings import counted_booking
from storage.event_types import EventType
from storage.local_time import Bucket, local_day_buckets, local_hour_buckets
from storage.models import Client, StoredEvent, sqlite_datetime
from storage.report_queries import events_between

WRITERS = "writers"  # the trend's per-user counts, beside the event names

events = cast(Table, StoredEvent.__table__)


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


async def daily_counts(
    session: AsyncSession,
    start_utc: datetime,
    end_utc: datetime,
    zone: ZoneInfo,
    location: str | None = None,
) -> tuple[DayCounts, ...]:
    """Per local day: distinct writers, leads, bookings, and writers who also left a lead that day.

    Every day of the period is present, quiet days as zeros, so the bars keep a regular calendar.
    """
    days = local_day_buckets(start_utc, end_utc, zone)
    buckets = _buckets(_dialect(session), [bounds for _, bounds in days])
    day_users = (
        select(
            buckets.c.n,
            func.max(case((events.c.event == EventType.MESSAGE_RECEIVED, 1), else_=0)).label("wrote"),
            func.max(case((events.c.event == EventType.LEAD_CREATED, 1), else_=0)).label("applied"),
        )
        .select_from(
            buckets.join(
                events, _in_bucket(buckets, [EventType.MESSAGE_RECEIVED, EventType.LEAD_CREATED], location)
            )
        )
        .group_by(buckets.c.n, events.c.user_id)
        .subquery("day_users")
    )
    counted = buckets.join(
        events,
        and_(
            _in_bucket(buckets, [EventType.LEAD_CREATED, EventType.APPOINTMENT_BOOKED], location),
            counted_booking(events),
        ),
    )
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
        leads, bookings = (
            found.get((n, EventType.LEAD_CREATED), (0, 0))[0],
            found.get((n, EventType.APPOINTMENT_BOOKED), (0, 0))[0],
        )
        counts.append(DayCounts(day, wrote, leads, bookings, wrote_and_applied))
    return tuple(counts)


async def week_hour_counts(
    session: AsyncSession,
    start_utc: datetime,
    end_utc: datetime,
    zone: ZoneInfo,
    location: str | None = None,
) -> WeekHourCounts:
    """Client messages and refusals per local weekday × hour, from at most one row per hour and kind."""
    hours = local_hour_buckets(start_utc, end_utc, zone)
    buckets = _buckets(_dialect(session), [bounds for _, bounds in hours])
    statement = (
        select(buckets.c.n, events.c.event, func.count())
        .select_from(
            buckets.join(
                events, _in_bucket(buckets, [EventType.MESSAGE_RECEIVED, EventType.REFUSAL], location)
            )
        )
        .group_by(buckets.c.n, events.c.event)
    )
    grids = {EventType.MESSAGE_RECEIVED: empty_grid(), EventType.REFUSAL: empty_grid()}
    for n, event, count in await session.execute(statement):
        weekday, hour = hours[int(n)][0]
        grids[event][weekday][hour] += int(count)
    return WeekHourCounts(
        freeze_grid(grids[EventType.MESSAGE_RECEIVED]), freeze_grid(grids[EventType.REFUSAL])
    )


async def client_journey(session: AsyncSession, client_id: int, zone: ZoneInfo) -> ClientJourney:
    """Every event of one client, oldest first, in local time; a refusal carries its reason (else intent)."""
    name = (await session.execute(select(Client.name).where(Client.id == client_id))).scalar_one_or_none()
    statement = (
        select(StoredEvent.ts, StoredEvent.event, StoredEvent.reason, StoredEvent.intent)
        .where(StoredEvent.client_id == client_id)
        .order_by(StoredEvent.ts, StoredEvent.id)
    )
    events = tuple(
        JourneyEvent(ts.astimezone(zone), event, (reason or intent) if event == EventType.REFUSAL else None)
        for ts, event, reason, intent in await session.execute(statement)
    )
    return ClientJourney(client_id, name, events)
