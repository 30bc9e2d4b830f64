"""Model calls received over OTLP that wait for their trace's user, and the users traces named.

An auto-instrumented model call carries no user; the assistant's handler span, its parent, does, and
arrives later, often in another request. What was acknowledged must survive a restart, so both sides
are kept here: ``pending_spans`` (the calls, as event fields without ``user_id``) and ``trace_users``
(the best user a trace named on a span that is no event, such as the handler's; a user named on a model
call is found on its stored event instead). The writes are plain functions of a connection, run by
``Database.writes`` (in the writer process on SQLite), so they take turns with the event commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, or_, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import PendingSpan, StoredEvent, TraceUser
from storage.upsert import insert_ignoring_conflicts

events = StoredEvent.__table__

# The user id of model calls whose trace never named a user (``ai.trace_wait_seconds`` passed).
UNATTRIBUTED_USER = "unattributed"
# Rows per statement: PostgreSQL allows 32,767 bind parameters, SQLite 32,766 since 3.32.
CHUNK = 1000
RANGES = 100  # index ranges ORed in one statement
TRACE_ID_CHARS = 32
# A user known only from a model call stored as an event: the event does not say which attribute named
# it, so it ranks after every attribute.
STORED_CALL_RANK = 99


@dataclass(frozen=True, slots=True)
class NamedUser:
    """A user a span of ``trace_id`` named; ``rank`` is the attribute's place in the order of user
    attributes (lower wins)."""

    trace_id: str
    user_id: str
    rank: int


@dataclass(frozen=True, slots=True)
class WaitingCall:
    trace_id: str
    span_id: str
    fields: dict[str, Any]


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _remember_users(conn: Connection, users: Sequence[NamedUser], now: datetime) -> None:
    """Insert or improve: a trace keeps its best-ranked user, and a user seen again stays longer."""
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = dialect_insert(TraceUser)
    statement = statement.on_conflict_do_update(
        index_elements=["trace_id"],
        set_={
            "user_id": statement.excluded.user_id,
            "rank": statement.excluded.rank,
            "seen_at": statement.excluded.seen_at,
        },
        where=statement.excluded.rank <= TraceUser.rank,
    )
    # One statement, many parameter sets: compiled once, not once per thousand rows of VALUES.
    conn.execute(
        statement,
        [{"trace_id": u.trace_id, "user_id": u.user_id, "rank": u.rank, "seen_at": now} for u in users],
    )


def keep_waiting(
    conn: Connection, users: Sequence[NamedUser], calls: Sequence[WaitingCall], now: datetime
) -> None:
    """One transaction: the users this request's spans that are no events named, and the calls that wait
    for one (a call sent again while it waits stays one)."""
    if users:
        _remember_users(conn, _best_per_trace(users), now)
    for chunk in _chunks(calls):
        conn.execute(
            insert_ignoring_conflicts(conn, PendingSpan, ["trace_id", "span_id"]),
            [
                {"trace_id": c.trace_id, "span_id": c.span_id, "received_at": now, "fields": c.fields}
                for c in chunk
            ],
        )


def _best_per_trace(users: Sequence[NamedUser]) -> list[NamedUser]:
    """One row per trace (one statement may not touch a row twice): the best rank, the first on a tie."""
    best: dict[str, NamedUser] = {}
    for user in users:
        if user.trace_id not in best or user.rank < best[user.trace_id].rank:
            best[user.trace_id] = user
    return list(best.values())


async def known_users(
    session: AsyncSession, trace_ids: Iterable[str], *, stored_calls: bool = True
) -> dict[str, NamedUser]:
    """The users these traces named before: on a span kept in ``trace_users`` (the handler's), else (with
    ``stored_calls``) on a model call of the trace stored as an event (its event id starts with the
    trace id)."""
    found: dict[str, NamedUser] = {}
    for chunk in _chunks(sorted(set(trace_ids))):
        result = await session.execute(
            select(TraceUser.trace_id, TraceUser.user_id, TraceUser.rank).where(TraceUser.trace_id.in_(chunk))
        )
        found.update({trace: NamedUser(trace, user, rank) for trace, user, rank in result})
        missing = [trace for trace in chunk if trace not in found] if stored_calls else []
        for few in _chunks(missing, RANGES):
            # One range of the unique event_id index per trace; hex ids sort below "g".
            ranges = or_(
                *(and_(events.c.event_id >= trace, events.c.event_id < trace + "g") for trace in few)
            )
            stored = await session.execute(
                select(events.c.event_id, events.c.user_id).where(
                    ranges, events.c.model.is_not(None), events.c.user_id != UNATTRIBUTED_USER
                )
            )
            for event_id, user in stored:
                trace = event_id[:TRACE_ID_CHARS]
                found.setdefault(trace, NamedUser(trace, user, STORED_CALL_RANK))
    return found


@dataclass(frozen=True, slots=True)
class Waiting:
    trace_id: str
    span_id: str
    received_at: datetime


async def waiting_calls(session: AsyncSession, trace_ids: Sequence[str] | None = None) -> list[Waiting]:
    """The calls waiting now, of these traces or of all, oldest first (without their fields, which may be
    long: read those with ``fields_of`` for the ones released)."""
    columns = select(PendingSpan.trace_id, PendingSpan.span_id, PendingSpan.received_at).order_by(
        PendingSpan.received_at
    )
    if trace_ids is None:
        return [Waiting(*row) for row in await session.execute(columns)]
    if (await session.execute(select(PendingSpan.trace_id).limit(1))).first() is None:
        return []  # the usual case, asked after every request: one cheap look instead of a long IN
    found: list[Waiting] = []
    for chunk in _chunks(sorted(set(trace_ids))):
        found += [
            Waiting(*row) for row in await session.execute(columns.where(PendingSpan.trace_id.in_(chunk)))
        ]
    return found


async def fields_of(
    session: AsyncSession, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for chunk in _chunks(keys):
        result = await session.execute(
            select(PendingSpan.trace_id, PendingSpan.span_id, PendingSpan.fields).where(
                tuple_(PendingSpan.trace_id, PendingSpan.span_id).in_(chunk)
            )
        )
        found.update({(trace, span): fields for trace, span, fields in result})
    return found


def release(conn: Connection, calls: Sequence[tuple[str, str]], users_seen_before: datetime | None) -> None:
    """Forget released calls (their events are stored) and, given a moment, the users traces named
    before it (their model calls had ``ai.trace_wait_seconds`` to arrive)."""
    for chunk in _chunks(calls):
        conn.execute(delete(PendingSpan).where(tuple_(PendingSpan.trace_id, PendingSpan.span_id).in_(chunk)))
    if users_seen_before is not None:
        conn.execute(delete(TraceUser).where(TraceUser.seen_at <= users_seen_before))
