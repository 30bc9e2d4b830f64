"""The follow-up lists in SQL (design.md, "Follow-ups"): for each list, every client's latest event of the
kinds that put them on it, inside the list's window, with no event after it that takes them off.

Each list reads its window through ``ix_events_event_ts`` (event, ts, client_id, …) and looks for what
came after per client in that client's rows of ``ix_events_client_user`` (client_id, user_id, event, ts),
so its cost follows the clients in the window, not the size of the store. Nothing at or after ``now`` is
read, marks included: ``followup --now`` in the past sees the lists as they were then.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import FromClause, Subquery

from storage.event_types import PAID, EventType
from storage.followup_items import (
    RESCUE_WINDOW,
    Candidate,
    ClientFacts,
    FollowupInputs,
    FollowupWindows,
    HandledFollowups,
    ListKind,
    ListWindow,
)
from storage.models import Client, ClientIdentity, FollowupMark, StoredEvent

_CHUNK = 5000
_KINDS = frozenset(ListKind)
events = StoredEvent.__table__
WAITING = (EventType.MESSAGE_RECEIVED,)
REPLIES = (EventType.ASSISTANT_RESPONSE, EventType.MANAGER_MESSAGE)
LEADS = (EventType.LEAD_CREATED,)
NO_SHOWS = (EventType.NO_SHOW,)
VISITS = (EventType.VISIT,)
PAYMENTS = (EventType.PAYMENT_STATUS,)
BOOKED = (EventType.APPOINTMENT_BOOKED,)
BOOKED_OR_REFUSED = (EventType.APPOINTMENT_BOOKED, EventType.REFUSAL)


def _of_kind(table: FromClause, kinds: Sequence[str]) -> ColumnElement[bool]:
    """The row is of one of ``kinds``, tested on an expression of ``event`` rather than the column: SQLite
    has no statistics to tell that one client's rows (``ix_events_client_user``) are far fewer than every
    event of a type (``ix_events_event_ts``), and picked the latter, a scan per client (seconds on a
    million events). PostgreSQL plans these lookups as joins either way."""
    return table.c.event.concat("").in_(kinds)


def _latest(
    kinds: Sequence[str], window: ListWindow, location: str | None, *only: ColumnElement[bool]
) -> Subquery:
    """Each client's latest event of ``kinds`` in the window (and ``only``), if due by ``due_by``."""
    conditions = [events.c.event.in_(kinds), events.c.ts >= window.start, events.c.ts < window.end, *only]
    if location is not None:
        conditions.append(events.c.location == location)
    statement = (
        select(events.c.client_id, func.max(events.c.ts).label("ts"))
        .where(*conditions)
        .group_by(events.c.client_id)
    )
    if window.due_by is not None:
        statement = statement.having(func.max(events.c.ts) <= window.due_by)
    return statement.subquery("latest")


def _any_after(
    latest: Subquery, kinds: Sequence[str], now: datetime, *, same_moment_counts: bool
) -> ColumnElement[bool]:
    """An event of ``kinds`` of the same client after the latest one (or at that moment), before now."""
    after = events.alias("after")
    later = after.c.ts >= latest.c.ts if same_moment_counts else after.c.ts > latest.c.ts
    return exists().where(
        after.c.client_id == latest.c.client_id, _of_kind(after, kinds), later, after.c.ts < now
    )


def _ever_before(latest: Subquery, kinds: Sequence[str], now: datetime) -> ColumnElement[bool]:
    """An event of ``kinds`` of the same client at any time before now."""
    other = events.alias("other")
    return exists().where(other.c.client_id == latest.c.client_id, _of_kind(other, kinds), other.c.ts < now)


async def _candidates(
    session: AsyncSession,
    latest: Subquery,
    row: FromClause,
    kinds: Sequence[str],
    taken_off: ColumnElement[bool],
    *only_row: ColumnElement[bool],
) -> list[Candidate]:
    """The clients of ``latest`` not ``taken_off``, each with the row of their latest event (``row``, which
    ``only_row`` may test); one per client even when two rows share that moment."""
    statement = (
        select(latest.c.client_id, latest.c.ts, row.c.event, row.c.channel, row.c.message)
        .join(
            row,
            and_(row.c.client_id == latest.c.client_id, row.c.ts == latest.c.ts, _of_kind(row, kinds)),
        )
        .where(~taken_off, *only_row)
        .order_by(latest.c.client_id, row.c.id)
    )
    found: dict[int, Candidate] = {}
    for client_id, since, event, channel, message in await session.execute(statement):
        found.setdefault(client_id, Candidate(client_id, since, event, channel, message))
    return list(found.values())


async def _unanswered(session: AsyncSession, w: FollowupWindows, location: str | None) -> list[Candidate]:
    """The latest message, no reply from the assistant or a manager at or after it. A message event that
    carries the assistant's answer itself (the seed's format) is answered."""
    latest = _latest(WAITING, w.unanswered, location)
    row = events.alias("row")
    open_in_row = or_(row.c.assistant_response.is_(None), row.c.assistant_response == "")
    taken_off = _any_after(latest, REPLIES, w.now, same_moment_counts=True)
    return await _candidates(session, latest, row, WAITING, taken_off, open_in_row)


async def _leads(session: AsyncSession, w: FollowupWindows, location: str | None) -> list[Candidate]:
    """The latest lead of the window, no booking or refusal at or after it."""
    latest = _latest(LEADS, w.leads_without_booking, location)
    taken_off = _any_after(latest, BOOKED_OR_REFUSED, w.now, same_moment_counts=True)
    return await _candidates(session, latest, events.alias("row"), LEADS, taken_off)


async def _no_shows(session: AsyncSession, w: FollowupWindows, location: str | None) -> list[Candidate]:
    """The latest no-show of the window, no booking after it."""
    latest = _latest(NO_SHOWS, w.no_shows, location)
    taken_off = _any_after(latest, BOOKED, w.now, same_moment_counts=False)
    return await _candidates(session, latest, events.alias("row"), NO_SHOWS, taken_off)


async def _repeat_due(session: AsyncSession, w: FollowupWindows, location: str | None) -> list[Candidate]:
    """The last visit, or the last paid payment of a client who has no visit at all, old enough and inside
    the horizon, no booking after it."""
    window = w.repeat_due
    visited = _latest(VISITS, window, location)
    by_visit = await _candidates(
        session,
        visited,
        events.alias("row"),
        VISITS,
        _any_after(visited, BOOKED, w.now, same_moment_counts=False),
    )
    paid = _latest(PAYMENTS, window, location, events.c.status == PAID)
    row = events.alias("row")
    by_payment = await _candidates(
        session,
        paid,
        row,
        PAYMENTS,
        or_(_any_after(paid, BOOKED, w.now, same_moment_counts=False), _ever_before(paid, VISITS, w.now)),
        row.c.status == PAID,
    )
    return by_visit + by_payment


def _chunks(ids: Iterable[int]) -> Iterable[list[int]]:
    ordered = sorted(set(ids))
    for start in range(0, len(ordered), _CHUNK):
        yield ordered[start : start + _CHUNK]


async def _client_facts(session: AsyncSession, client_ids: Iterable[int]) -> dict[int, ClientFacts]:
    """Name, user ids and first phone of each client."""
    facts: dict[int, ClientFacts] = {}
    for chunk in _chunks(client_ids):
        names = dict(
            (await session.execute(select(Client.id, Client.name).where(Client.id.in_(chunk)))).all()
        )
        ids = await session.execute(
            select(ClientIdentity.client_id, ClientIdentity.kind, ClientIdentity.value)
            .where(ClientIdentity.client_id.in_(chunk), ClientIdentity.kind.in_(("user", "phone")))
            .order_by(ClientIdentity.client_id, ClientIdentity.first_seen_at, ClientIdentity.id)
        )
        users: dict[int, list[str]] = {}
        phones: dict[int, str] = {}
        for client_id, kind, value in ids:
            if kind == "user":
                users.setdefault(client_id, []).append(value)
            else:
                phones.setdefault(client_id, value)
        for client_id, name in names.items():
            facts[client_id] = ClientFacts(name, tuple(users.get(client_id, ())), phones.get(client_id))
    return facts


async def _marks(
    session: AsyncSession, client_ids: set[int], now: datetime
) -> dict[tuple[int, ListKind], datetime]:
    """The latest handled mark before now of each (client, list), for these clients."""
    statement = (
        select(FollowupMark.client_id, FollowupMark.list_kind, func.max(FollowupMark.handled_at))
        .where(FollowupMark.handled_at < now)
        .group_by(FollowupMark.client_id, FollowupMark.list_kind)
    )
    return {
        (client_id, ListKind(kind)): handled_at
        for client_id, kind, handled_at in await session.execute(statement)
        if client_id in client_ids and kind in _KINDS
    }


async def _last_events(
    session: AsyncSession, client_ids: Iterable[int], now: datetime
) -> dict[int, datetime]:
    """Each client's latest event before now."""
    last: dict[int, datetime] = {}
    for chunk in _chunks(client_ids):
        statement = (
            select(events.c.client_id, func.max(events.c.ts))
            .where(events.c.client_id.in_(chunk), events.c.ts < now)
            .group_by(events.c.client_id)
        )
        last.update((client_id, ts) for client_id, ts in await session.execute(statement))
    return last


async def load_followup_inputs(
    session: AsyncSession, windows: FollowupWindows, location: str | None = None
) -> FollowupInputs:
    """Every list's candidates at ``windows.now`` (only events at ``location``, when given), who they
    are, and the marks that may hide them; read in one session."""
    candidates = {
        ListKind.UNANSWERED: tuple(await _unanswered(session, windows, location)),
        ListKind.LEADS_WITHOUT_BOOKING: tuple(await _leads(session, windows, location)),
        ListKind.NO_SHOWS: tuple(await _no_shows(session, windows, location)),
        ListKind.REPEAT_DUE: tuple(await _repeat_due(session, windows, location)),
    }
    client_ids = {candidate.client_id for found in candidates.values() for candidate in found}
    marks = await _marks(session, client_ids, windows.now)
    return FollowupInputs(
        now=windows.now,
        candidates=candidates,
        clients=await _client_facts(session, client_ids),
        marks=marks,
        last_events=await _last_events(session, {client_id for client_id, _ in marks}, windows.now),
    )


def mark_handled(
    session: AsyncSession, client_id: int, kind: ListKind, *, since: datetime, at: datetime, by: int
) -> None:
    """Record in the caller's transaction that ``by`` handled the client's item of list ``kind``."""
    session.add(FollowupMark(client_id=client_id, list_kind=kind, since=since, handled_at=at, handled_by=by))


async def handled_between(session: AsyncSession, start: datetime, end: datetime) -> HandledFollowups:
    """The marks made in ``[start, end)`` and the bookings of those clients up to ``RESCUE_WINDOW`` after."""
    marks = tuple(
        (client_id, handled_at)
        for client_id, handled_at in await session.execute(
            select(FollowupMark.client_id, FollowupMark.handled_at)
            .where(FollowupMark.handled_at >= start, FollowupMark.handled_at < end)
            .order_by(FollowupMark.handled_at, FollowupMark.id)
        )
    )
    if not marks:
        return HandledFollowups()
    bookings: dict[int, list[datetime]] = {}
    for chunk in _chunks(client_id for client_id, _ in marks):
        statement = select(events.c.client_id, events.c.ts).where(
            events.c.client_id.in_(chunk),
            events.c.event == EventType.APPOINTMENT_BOOKED,
            events.c.ts > start,
            events.c.ts <= end + RESCUE_WINDOW,
        )
        for client_id, ts in await session.execute(statement):
            bookings.setdefault(client_id, []).append(ts)
    return HandledFollowups(marks, {client_id: tuple(sorted(ts)) for client_id, ts in bookings.items()})
