"""The raw numbers behind a report, aggregated in SQL for one period (design.md, "Report metrics").

Every query reads the period through ``ix_events_event_ts`` (event, ts, …), which also carries every
column the report reads, so no wide table row is touched. Looking back into a user's history for their
latest or first message, or an earlier booking, goes through ``ix_events_client_ts`` (client_id, ts,
event, user_id): a user_id belongs to exactly one client, and ``events`` has no index on user_id on
purpose (one more b-tree would cost every insert). Only latencies leave the database one by one: per
answer and per booking (on SQLite packed into one value, see ``_collect``).

A location filter limits which events are counted; look-backs see the user's whole history, so a booking
at one point is a repeat booking when the user booked before at any point.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    and_,
    case,
    cast,
    extract,
    func,
    literal,
    literal_column,
    null,
    select,
    text,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.selectable import FromClause

from storage.models import StoredEvent
from storage.reads import SessionSource, gather_reads

MESSAGE, ANSWER, LEAD = "message_received", "assistant_response", "lead_created"
BOOKING, PAYMENT, NO_SHOW, REFUSAL = "appointment_booked", "payment_status", "no_show", "refusal"
COUNTED_EVENTS = (MESSAGE, ANSWER, LEAD, BOOKING, NO_SHOW, REFUSAL)
UNKNOWN_REASON = "unknown"

events = StoredEvent.__table__


@dataclass(frozen=True, slots=True)
class Breakdown:
    """One channel's or location's share: clients who wrote, leads and bookings."""

    clients: int
    leads: int
    bookings: int


@dataclass(frozen=True, slots=True)
class Funnel:
    """Users (by user_id) at each step of the period, and the same per channel and per location."""

    clients: int
    users_with_lead: int
    users_with_message_and_lead: int
    users_with_lead_and_booking: int
    by_channel: dict[str, Breakdown]
    by_location: dict[str | None, Breakdown]


@dataclass(frozen=True, slots=True)
class PeriodAggregates:
    """Everything the metrics of one period are computed from; ``by_location`` keys None = no location."""

    event_counts: dict[str, int]
    funnel: Funnel
    payments_paid: int
    revenue: float
    intents: dict[str, int]
    refusal_reasons: dict[str, int]
    response_seconds: list[float]
    first_message_to_booking_seconds: list[float]
    repeat_bookings: int


@dataclass(frozen=True, slots=True)
class _Scope:
    start: datetime
    end: datetime
    location: str | None

    def where(self, table: FromClause, *names: str) -> ColumnElement[bool]:
        """Events of these types in [start, end) (and at the location): a range of ix_events_event_ts."""
        conditions = [
            table.c.event == names[0] if len(names) == 1 else table.c.event.in_(names),
            table.c.ts >= self.start,
            table.c.ts < self.end,
        ]
        if self.location is not None:
            conditions.append(table.c.location == self.location)
        return and_(*conditions)


def _elapsed(
    later: ColumnElement[datetime], earlier: ColumnElement[datetime], dialect: str
) -> ColumnElement[Any]:
    """Time from ``earlier`` to ``later`` in ``_collect``'s unit; NULL when either is NULL.

    SQLite keeps times as text and its date functions work in whole milliseconds, so the julianday
    difference is rounded back to them; PostgreSQL's epoch is exact, in seconds.
    """
    if dialect == "sqlite":
        return cast(func.round((func.julianday(later) - func.julianday(earlier)) * 86_400_000.0), Integer)
    return cast(extract("epoch", later) - extract("epoch", earlier), Float)


def _milliseconds(value: ColumnElement[int], dialect: str) -> ColumnElement[Any]:
    """A stored response_time_ms in ``_collect``'s unit."""
    return value if dialect == "sqlite" else value / 1000.0


async def _collect(
    session: AsyncSession, value: ColumnElement[Any], counted: ColumnElement[int], where: ColumnElement[bool]
) -> tuple[list[float], int]:
    """Every non-NULL ``value`` of the rows ``where``, as seconds, and the sum of ``counted``.

    On SQLite the values come back as one text of whole milliseconds: the driver takes the GIL back for
    every row it steps, and beside the report's other busy threads (the other queries, the charts being
    drawn) 100k single rows took four times as long. Packed, the whole look-up runs outside the GIL.
    """
    if session.get_bind().dialect.name == "sqlite":
        statement = select(func.group_concat(value), func.sum(counted)).where(where)
        packed, total = (await session.execute(statement)).one()
        return [int(part) / 1000 for part in packed.split(",")] if packed else [], int(total or 0)
    values: list[float] = []
    total = 0
    for seconds, count in await session.execute(select(value, counted).where(where)):
        if seconds is not None:
            values.append(float(seconds))
        total += int(count)
    return values, total


def one_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return case((condition, 1), else_=0)


async def _funnel(session: AsyncSession, scope: _Scope) -> Funnel:
    """One pass over the period's messages, leads and bookings, grouped three ways in one statement."""
    groups = (
        select(
            events.c.user_id,
            events.c.channel,
            events.c.location,
            func.max(one_if(events.c.event == MESSAGE)).label("wrote"),
            func.sum(one_if(events.c.event == LEAD)).label("leads"),
            func.sum(one_if(events.c.event == BOOKING)).label("bookings"),
        )
        .where(scope.where(events, MESSAGE, LEAD, BOOKING))
        .group_by(events.c.user_id, events.c.channel, events.c.location)
        .cte("per_group")
    )
    users = (
        select(
            func.max(groups.c.wrote).label("wrote"),
            func.max(one_if(groups.c.leads > 0)).label("led"),
            func.max(one_if(groups.c.bookings > 0)).label("booked"),
        )
        .group_by(groups.c.user_id)
        .subquery("per_user")
    )
    # The three parts differ in column types, which the typing of union_all does not allow for.
    totals: Any = select(
        literal_column("'total'"),
        null(),
        func.sum(users.c.wrote),
        func.sum(users.c.led),
        func.sum(users.c.wrote * users.c.led),
        func.sum(users.c.led * users.c.booked),
    )

    def per(column: str) -> Any:
        key = groups.c[column]
        return select(
            literal_column(f"'{column}'"),
            key,
            func.count(case((groups.c.wrote == 1, groups.c.user_id)).distinct()),
            func.sum(groups.c.leads),
            func.sum(groups.c.bookings),
            null(),
        ).group_by(key)

    result = await session.execute(union_all(totals, per("channel"), per("location")))
    total = (0, 0, 0, 0)
    by: dict[str, dict[str | None, Breakdown]] = {"channel": {}, "location": {}}
    for kind, key, first, second, third, fourth in result:
        if kind == "total":
            total = (int(first or 0), int(second or 0), int(third or 0), int(fourth or 0))
        else:
            by[kind][key] = Breakdown(int(first), int(second), int(third))
    return Funnel(
        clients=total[0],
        users_with_lead=total[1],
        users_with_message_and_lead=total[2],
        users_with_lead_and_booking=total[3],
        by_channel={str(key): counts for key, counts in by["channel"].items()},
        by_location=by["location"],
    )


async def _counts(session: AsyncSession, statement: Executable) -> dict[str, int]:
    return {str(name): int(count) for name, count in await session.execute(statement)}


async def _event_counts(session: AsyncSession, scope: _Scope) -> dict[str, int]:
    statement = (
        select(events.c.event, func.count())
        .where(scope.where(events, *COUNTED_EVENTS))
        .group_by(events.c.event)
    )
    return await _counts(session, statement)


async def _payments(session: AsyncSession, scope: _Scope) -> tuple[int, float]:
    statement = select(func.count(), func.sum(events.c.amount)).where(
        scope.where(events, PAYMENT), events.c.status == "paid"
    )
    count, total = (await session.execute(statement)).one()
    return int(count), float(total or 0)


async def _intents(session: AsyncSession, scope: _Scope) -> dict[str, int]:
    statement = (
        select(events.c.intent, func.count())
        .where(scope.where(events, ANSWER), events.c.intent.is_not(None), events.c.intent != "")
        .group_by(events.c.intent)
    )
    return await _counts(session, statement)


async def _refusal_reasons(session: AsyncSession, scope: _Scope) -> dict[str, int]:
    # Grouped in an outer query: PostgreSQL would not match a GROUP BY expression with its own parameters.
    labelled = (
        select(
            func.coalesce(
                func.nullif(events.c.reason, ""), func.nullif(events.c.intent, ""), literal(UNKNOWN_REASON)
            ).label("reason")
        )
        .where(scope.where(events, REFUSAL))
        .subquery()
    )
    return await _counts(session, select(labelled.c.reason, func.count()).group_by(labelled.c.reason))


def _same_user(earlier: FromClause, event: FromClause, name: str) -> ColumnElement[bool]:
    """``earlier`` is an event ``name`` of the same user_id, read from ix_events_client_ts alone.

    client_id first: it leads the index, and a user_id never spans two clients. The index carries
    event and user_id, so walking a client's history needs no table row.
    """
    return and_(
        earlier.c.client_id == event.c.client_id,
        earlier.c.user_id == event.c.user_id,
        earlier.c.event == name,
    )


async def _response_seconds(session: AsyncSession, scope: _Scope, dialect: str) -> list[float]:
    """Given response_time_ms, else seconds since the user's latest message at or before the answer.

    One value per answer, deliberately not grouped by it: SQLite evaluates a grouped correlated look-up a
    second time with a plan that scans every earlier message — quadratic in the period's size. Measured
    on SQLite, this look-up (one short walk back in ix_events_client_ts, which carries event and user_id)
    beats a window over the period's messages and answers: sorting them per user costs more.
    """
    answer, message = events.alias("answer"), events.alias("message")
    latest_message = (
        select(message.c.ts)
        .where(_same_user(message, answer, MESSAGE), message.c.ts <= answer.c.ts)
        .order_by(message.c.ts.desc())
        .limit(1)
        .scalar_subquery()
    )
    elapsed = case(
        (answer.c.response_time_ms.is_not(None), _milliseconds(answer.c.response_time_ms, dialect)),
        else_=_elapsed(answer.c.ts, latest_message, dialect),
    )
    seconds, _ = await _collect(session, elapsed, literal(0), scope.where(answer, ANSWER))
    return seconds


async def _bookings(session: AsyncSession, scope: _Scope, dialect: str) -> tuple[list[float], int]:
    """Seconds back to the user's first message (when there is one) per booking, and how many repeat.

    Both look-backs walk the client's history in ix_events_client_ts: the first message at or before the
    booking, and whether any booking of the user came strictly before it.
    """
    booking, message, before = events.alias("booking"), events.alias("message"), events.alias("before")
    first_message = (
        select(message.c.ts)
        .where(_same_user(message, booking, MESSAGE), message.c.ts <= booking.c.ts)
        .order_by(message.c.ts.asc())
        .limit(1)
        .scalar_subquery()
    )
    booked_before = (
        select(literal(1)).where(_same_user(before, booking, BOOKING), before.c.ts < booking.c.ts).exists()
    )
    since_first_message = _elapsed(booking.c.ts, first_message, dialect)
    return await _collect(session, since_first_message, one_if(booked_before), scope.where(booking, BOOKING))


async def _dialect_prepared(session: AsyncSession) -> str:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        # The correlated look-ups inflate the planner's cost estimates until it JIT-compiles them, which
        # takes longer than running them (measured: 1.4 s instead of 0.8 s for 145k answers).
        await session.execute(text("SET LOCAL jit = off"))
    return dialect


async def load_period_aggregates(
    source: SessionSource, bounds: tuple[datetime, datetime], location: str | None = None
) -> PeriodAggregates:
    """All raw numbers of the period ``[start, end)`` (UTC), optionally at one location.

    Given a session factory, three groups of queries of about equal cost run side by side (see
    ``storage.reads``): the answer times, the bookings with the plain counts, the funnel with intents.
    """
    scope = _Scope(bounds[0], bounds[1], location)

    async def answer_times(session: AsyncSession) -> list[float]:
        return await _response_seconds(session, scope, await _dialect_prepared(session))

    async def bookings_and_counts(
        session: AsyncSession,
    ) -> tuple[tuple[list[float], int], tuple[int, float], dict[str, int], dict[str, int]]:
        bookings = await _bookings(session, scope, await _dialect_prepared(session))
        return (
            bookings,
            await _payments(session, scope),
            await _event_counts(session, scope),
            await _refusal_reasons(session, scope),
        )

    async def funnel_and_intents(session: AsyncSession) -> tuple[Funnel, dict[str, int]]:
        await _dialect_prepared(session)
        return await _funnel(session, scope), await _intents(session, scope)

    response_seconds, counted, grouped = await gather_reads(
        source, [answer_times, bookings_and_counts, funnel_and_intents]
    )
    (first_message_seconds, repeat_bookings), (payments_paid, revenue), event_counts, reasons = counted
    funnel, intents = grouped
    return PeriodAggregates(
        event_counts=event_counts,
        funnel=funnel,
        payments_paid=payments_paid,
        revenue=revenue,
        intents=intents,
        refusal_reasons=reasons,
        response_seconds=response_seconds,
        first_message_to_booking_seconds=first_message_seconds,
        repeat_bookings=repeat_bookings,
    )
