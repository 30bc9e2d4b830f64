"""The raw numbers behind a report, aggregated in SQL for one period (design.md, "Report metrics").

Every query reads the period through ``ix_events_event_ts`` (event, ts, …), which also carries every
column the report reads, so no wide table row is touched. What an answer or a booking needs from the
user's earlier events (the message it replies to, the first message, an earlier booking) the writer
keeps on the row itself (``storage.report_columns``), so no query looks back into anyone's history. Only
latencies leave the database one by one: per answer and per booking (on SQLite packed into one value,
see ``_collect``).

A location filter limits which events are counted; the look-backs saw the user's whole history, so a
booking at one point is a repeat booking when the user booked before at any point.
"""

from __future__ import annotations

from collections.abc import Sequence
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

from storage.aggregates import Breakdown, Funnel, ModelUsage, PeriodAggregates
from storage.bookings import client_booked_before, clients_first_message, counted_booking
from storage.event_types import PAID, EventType
from storage.followup_queries import handled_between
from storage.models import StoredEvent

UNKNOWN_REASON = "unknown"
REPORT_WORK_MEM = "64MB"  # PostgreSQL, for the report's transactions only

events = StoredEvent.__table__


def events_between(
    table: FromClause,
    names: Sequence[str],
    start: datetime | ColumnElement[Any],
    end: datetime | ColumnElement[Any],
    location: str | None,
) -> ColumnElement[bool]:
    """Events of these types in [start, end) (and at the location): a range of ix_events_event_ts.

    The bounds are moments, or the columns of a table of time buckets joined to the events.
    """
    conditions = [
        table.c.event == names[0] if len(names) == 1 else table.c.event.in_(names),
        table.c.ts >= start,
        table.c.ts < end,
    ]
    if location is not None:
        conditions.append(table.c.location == location)
    return and_(*conditions)


@dataclass(frozen=True, slots=True)
class _Scope:
    start: datetime
    end: datetime
    location: str | None

    def where(self, table: FromClause, *names: str) -> ColumnElement[bool]:
        return events_between(table, names, self.start, self.end, self.location)


def _elapsed(
    later: ColumnElement[datetime], earlier: ColumnElement[datetime], dialect: str
) -> ColumnElement[Any]:
    """Time from ``earlier`` to ``later`` in ``_collect``'s unit; NULL when either is NULL.

    SQLite keeps times as text and its date functions work in whole milliseconds, so the julianday
    difference is rounded back to them. PostgreSQL: the interval's seconds as a double, exact to the
    microsecond; EXTRACT would give numeric, whose arithmetic took 150 ms for a month's 110k answers.
    """
    if dialect == "sqlite":
        return cast(func.round((func.julianday(later) - func.julianday(earlier)) * 86_400_000.0), Integer)
    return func.date_part("epoch", later - earlier, type_=Float)


def _milliseconds(value: ColumnElement[int], dialect: str) -> ColumnElement[Any]:
    """A stored response_time_ms in ``_collect``'s unit."""
    return value if dialect == "sqlite" else cast(value, Float) / 1000.0


async def _collect(
    session: AsyncSession, value: ColumnElement[Any], counted: ColumnElement[int], where: ColumnElement[bool]
) -> tuple[list[float], int]:
    """Every non-NULL ``value`` of the rows ``where``, as seconds in ascending order (sorted once here:
    each percentile, chart and alert after it then costs a linear pass), and the sum of ``counted``.

    The values come back as one value, not one row each (100k rows a month): on SQLite one text of whole
    milliseconds, since its driver takes the GIL back for every row it steps and beside the report's
    other busy threads single rows took four times as long; on PostgreSQL one array, which asyncpg
    decodes in C, where rows cost SQLAlchemy's processing each (measured: 235 ms for 110k answers).
    """
    if session.get_bind().dialect.name == "sqlite":
        statement = select(func.group_concat(value), func.sum(counted)).where(where)
        packed, total = (await session.execute(statement)).one()
        return sorted(int(part) / 1000 for part in packed.split(",")) if packed else [], int(total or 0)
    statement = select(func.array_agg(value).filter(value.is_not(None)), func.sum(counted)).where(where)
    values, total = (await session.execute(statement)).one()
    return sorted(values or ()), int(total or 0)


def one_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return case((condition, 1), else_=0)


async def _funnel(session: AsyncSession, scope: _Scope) -> Funnel:
    """One pass over the period's messages, leads and bookings, grouped three ways in one statement.

    People are counted, not user ids: a client who writes in Telegram and books through the booking
    system is one client who converted. A booking counts once whoever reported it (storage.bookings).
    """
    booked = and_(events.c.event == EventType.APPOINTMENT_BOOKED, counted_booking(events))
    groups = (
        select(
            events.c.client_id,
            events.c.channel,
            events.c.location,
            func.max(one_if(events.c.event == EventType.MESSAGE_RECEIVED)).label("wrote"),
            func.sum(one_if(events.c.event == EventType.MESSAGE_RECEIVED)).label("messages"),
            func.sum(one_if(events.c.event == EventType.LEAD_CREATED)).label("leads"),
            func.sum(one_if(booked)).label("bookings"),
        )
        .where(
            scope.where(
                events, EventType.MESSAGE_RECEIVED, EventType.LEAD_CREATED, EventType.APPOINTMENT_BOOKED
            )
        )
        .group_by(events.c.client_id, events.c.channel, events.c.location)
        .cte("per_group")
    )
    clients = (
        select(
            func.max(groups.c.wrote).label("wrote"),
            func.max(one_if(groups.c.leads > 0)).label("led"),
            func.max(one_if(groups.c.bookings > 0)).label("booked"),
            func.sum(groups.c.messages).label("messages"),
        )
        .group_by(groups.c.client_id)
        .subquery("per_client")
    )
    # The three parts differ in column types, which the typing of union_all does not allow for.
    totals: Any = select(
        literal_column("'total'"),
        null(),
        func.sum(clients.c.wrote),
        func.sum(clients.c.led),
        func.sum(clients.c.wrote * clients.c.led),
        func.sum(clients.c.led * clients.c.booked),
        func.sum(clients.c.messages),
    )

    def per(column: str) -> Any:
        key = groups.c[column]
        return select(
            literal_column(f"'{column}'"),
            key,
            func.count(case((groups.c.wrote == 1, groups.c.client_id)).distinct()),
            func.sum(groups.c.leads),
            func.sum(groups.c.bookings),
            null(),
            null(),
        ).group_by(key)

    result = await session.execute(union_all(totals, per("channel"), per("location")))
    total = [0] * 5
    by: dict[str, dict[str | None, Breakdown]] = {"channel": {}, "location": {}}
    for kind, key, *values in result:
        if kind == "total":
            total = [int(value or 0) for value in values]
        else:
            by[kind][key] = Breakdown(int(values[0]), int(values[1]), int(values[2]))
    channels = {str(key): counts for key, counts in by["channel"].items()}
    return Funnel(
        clients=total[0],
        clients_with_lead=total[1],
        clients_with_message_and_lead=total[2],
        clients_with_lead_and_booking=total[3],
        by_channel=channels,
        by_location=by["location"],
        messages=total[4],
        leads=sum(counts.leads for counts in channels.values()),
        bookings=sum(counts.bookings for counts in channels.values()),
    )


async def _counts(session: AsyncSession, statement: Executable) -> dict[str, int]:
    return {str(name): int(count) for name, count in await session.execute(statement)}


async def _event_counts(session: AsyncSession, scope: _Scope, names: tuple[str, ...]) -> dict[str, int]:
    statement = (
        select(events.c.event, func.count()).where(scope.where(events, *names)).group_by(events.c.event)
    )
    return await _counts(session, statement)


async def _payments(session: AsyncSession, scope: _Scope) -> tuple[int, float]:
    statement = select(func.count(), func.sum(events.c.amount)).where(
        scope.where(events, EventType.PAYMENT_STATUS), events.c.status == PAID
    )
    count, total = (await session.execute(statement)).one()
    return int(count), float(total or 0)


async def _intents(session: AsyncSession, scope: _Scope) -> dict[str, int]:
    statement = (
        select(events.c.intent, func.count())
        .where(
            scope.where(events, EventType.ASSISTANT_RESPONSE),
            events.c.intent.is_not(None),
            events.c.intent != "",
        )
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
        .where(scope.where(events, EventType.REFUSAL))
        .subquery()
    )
    return await _counts(session, select(labelled.c.reason, func.count()).group_by(labelled.c.reason))


async def _response_seconds(session: AsyncSession, scope: _Scope, dialect: str) -> tuple[list[float], int]:
    """Given response_time_ms, else seconds since the message the answer replies to (none: not counted);
    and how many answers there were, counted or not."""
    elapsed = case(
        (events.c.response_time_ms.is_not(None), _milliseconds(events.c.response_time_ms, dialect)),
        else_=_elapsed(events.c.ts, events.c.reply_to_ts, dialect),
    )
    return await _collect(session, elapsed, literal(1), scope.where(events, EventType.ASSISTANT_RESPONSE))


async def _bookings(session: AsyncSession, scope: _Scope, dialect: str) -> tuple[list[float], int]:
    """Seconds back to the client's first message (when there is one) per booking, and how many repeat."""
    since_first_message = _elapsed(events.c.ts, clients_first_message(events), dialect)
    repeat = one_if(client_booked_before(events))
    counted = and_(scope.where(events, EventType.APPOINTMENT_BOOKED), counted_booking(events))
    return await _collect(session, since_first_message, repeat, counted)


async def load_model_usage(session: AsyncSession, *conditions: ColumnElement[bool]) -> tuple[ModelUsage, ...]:
    """The model calls matching ``conditions``, per model and cost currency. Whatever event carries a model
    counts as a call (an llm_call, an answer, a source's own event); read from ix_events_model_ts, which
    holds those events only."""
    statement = (
        select(
            events.c.model,
            events.c.currency,
            func.count(),
            func.coalesce(func.sum(events.c.input_tokens), 0),
            func.coalesce(func.sum(events.c.output_tokens), 0),
            func.count(events.c.cost),
            func.coalesce(func.sum(events.c.cost), 0.0),
        )
        .where(events.c.model.is_not(None), *conditions)
        .group_by(events.c.model, events.c.currency)
    )
    return tuple(
        ModelUsage(str(model), currency, int(calls), int(inputs), int(outputs), int(priced), float(cost))
        for model, currency, calls, inputs, outputs, priced, cost in await session.execute(statement)
    )


def _period_calls(scope: _Scope) -> list[ColumnElement[bool]]:
    conditions = [events.c.ts >= scope.start, events.c.ts < scope.end]
    if scope.location is not None:
        conditions.append(events.c.location == scope.location)
    return conditions


async def _dialect_prepared(session: AsyncSession) -> str:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        # The period's grouping sorts ~170k rows a month; in the default 4 MB they went to disk.
        await session.execute(text(f"SET LOCAL work_mem = '{REPORT_WORK_MEM}'"))
    return dialect


async def load_period_aggregates(
    session: AsyncSession, bounds: tuple[datetime, datetime], location: str | None = None
) -> PeriodAggregates:
    """All raw numbers of the period ``[start, end)`` (UTC), optionally at one location, in turn.

    One connection per period: SQLite's sorts run only about 1.4 times faster in two threads than in
    one, so more connections than cores cost more than they give (measured on two cores: six reads side
    by side took as long as one after the other, with 70 % more CPU). ``reports.owner_report.build_report``
    reads the two periods of a report side by side.
    """
    scope = _Scope(bounds[0], bounds[1], location)
    dialect = await _dialect_prepared(session)
    funnel = await _funnel(session, scope)
    response_seconds, answers = await _response_seconds(session, scope, dialect)
    first_message_seconds, repeat_bookings = await _bookings(session, scope, dialect)
    payments_paid, revenue = await _payments(session, scope)
    event_counts = {
        EventType.MESSAGE_RECEIVED: funnel.messages,
        EventType.ASSISTANT_RESPONSE: answers,
        EventType.LEAD_CREATED: funnel.leads,
        EventType.APPOINTMENT_BOOKED: funnel.bookings,
        **await _event_counts(
            session,
            scope,
            (EventType.NO_SHOW, EventType.REFUSAL, EventType.VISIT, EventType.APPOINTMENT_CANCELLED),
        ),
    }
    return PeriodAggregates(
        event_counts=event_counts,
        funnel=funnel,
        payments_paid=payments_paid,
        revenue=revenue,
        intents=await _intents(session, scope),
        refusal_reasons=await _refusal_reasons(session, scope),
        response_seconds=response_seconds,
        first_message_to_booking_seconds=first_message_seconds,
        repeat_bookings=repeat_bookings,
        model_usage=await load_model_usage(session, *_period_calls(scope)),
        # Marks carry no location: the follow-up numbers are the whole business's.
        followup=await handled_between(session, *bounds),
    )
