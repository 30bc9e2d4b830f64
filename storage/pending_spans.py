"""Model calls received over OTLP that wait for their trace's user, and the users traces named.

An auto-instrumented model call carries no user; the assistant's handler span, its parent, does, and
arrives later, often in another request. What was acknowledged must survive a restart, so both sides
are kept here: ``pending_spans`` (the calls, as event fields without ``user_id``) and ``trace_users``
(the best user a trace named). The writes are plain functions of a connection, run by
``Database.writes`` (in the writer process on SQLite), so they take turns with the event commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import PendingSpan, TraceUser
from storage.upsert import insert_ignoring_conflicts

# The user id of model calls whose trace never named a user (``ai.trace_wait_seconds`` passed).
UNATTRIBUTED_USER = "unattributed"
# Rows per statement: PostgreSQL allows 32,767 bind parameters, SQLite 32,766 since 3.32.
CHUNK = 1000


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


@dataclass(frozen=True, slots=True)
class DueCall:
    """A waiting call to release now: to its trace's user, or (``user_id`` None) to no one."""

    trace_id: str
    span_id: str
    fields: dict[str, Any]
    user_id: str | None


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def _remember_users(conn: Connection, users: Sequence[NamedUser], now: datetime) -> None:
    """Insert or improve: a trace keeps its best-ranked user, and a user seen again stays longer."""
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    for chunk in _chunks(users):
        statement = dialect_insert(TraceUser).values(
            [{"trace_id": u.trace_id, "user_id": u.user_id, "rank": u.rank, "seen_at": now} for u in chunk]
        )
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=["trace_id"],
                set_={
                    "user_id": statement.excluded.user_id,
                    "rank": statement.excluded.rank,
                    "seen_at": statement.excluded.seen_at,
                },
                where=statement.excluded.rank <= TraceUser.rank,
            )
        )


def keep_waiting(
    conn: Connection, users: Sequence[NamedUser], calls: Sequence[WaitingCall], now: datetime
) -> None:
    """One transaction: the users this request's traces named, and the calls that wait for one (a call
    sent again while it waits stays one)."""
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


async def known_users(session: AsyncSession, trace_ids: Sequence[str]) -> dict[str, NamedUser]:
    """The users these traces named in earlier requests."""
    found: dict[str, NamedUser] = {}
    for chunk in _chunks(sorted(set(trace_ids))):
        result = await session.execute(
            select(TraceUser.trace_id, TraceUser.user_id, TraceUser.rank).where(TraceUser.trace_id.in_(chunk))
        )
        found.update({trace: NamedUser(trace, user, rank) for trace, user, rank in result})
    return found


def _due() -> Any:
    return (
        select(PendingSpan.trace_id, PendingSpan.span_id, PendingSpan.fields, TraceUser.user_id)
        .outerjoin(TraceUser, TraceUser.trace_id == PendingSpan.trace_id)
        .order_by(PendingSpan.received_at, PendingSpan.trace_id, PendingSpan.span_id)
    )


async def attributable_calls(session: AsyncSession, trace_ids: Sequence[str]) -> list[DueCall]:
    """The waiting calls of these traces whose trace has named its user by now."""
    found: list[DueCall] = []
    for chunk in _chunks(sorted(set(trace_ids))):
        result = await session.execute(
            _due().where(PendingSpan.trace_id.in_(chunk), TraceUser.user_id.is_not(None))
        )
        found += [DueCall(trace, span, fields, user) for trace, span, fields, user in result]
    return found


async def due_calls(session: AsyncSession, waited_since: datetime, limit: int = CHUNK) -> list[DueCall]:
    """The oldest waiting calls that are due: their trace named its user (a request raced with the one
    that named it), or they were received at or before ``waited_since`` (user None)."""
    statement = _due().where(TraceUser.user_id.is_not(None) | (PendingSpan.received_at <= waited_since))
    result = await session.execute(statement.limit(limit))
    return [DueCall(trace, span, fields, user) for trace, span, fields, user in result]


def release(conn: Connection, calls: Sequence[tuple[str, str]], users_seen_before: datetime | None) -> None:
    """Forget released calls (their events are stored) and, given a moment, the users traces named
    before it (their model calls had ``ai.trace_wait_seconds`` to arrive)."""
    for chunk in _chunks(calls):
        conn.execute(delete(PendingSpan).where(tuple_(PendingSpan.trace_id, PendingSpan.span_id).in_(chunk)))
    if users_seen_before is not None:
        conn.execute(delete(TraceUser).where(TraceUser.seen_at <= users_seen_before))
