"""The report's look-back, kept on the rows: what each answer replies to.

design.md measures an answer from the user's latest message at or before it. Looked up at report time
that is one walk back into a user's history per answer: most of a 30-day report on a big store. So each
answer carries the result instead (``reply_to_ts``), kept in the transaction that inserts the events,
by ``storage.event_insert``:

- SQLite inserts a batch in time order (a message before an answer of the same moment), each row with
  its value looked up by the INSERT as it goes in (``sqlite_lookbacks``): no row is written twice.
- PostgreSQL inserts the batch in one statement, whose rows do not see each other: what the stored
  history gives is looked up first, in one statement, and combined with the batch's own earlier rows
  (``with_lookbacks``).

Every look-up is one seek in ix_events_client_user (client_id, user_id, event, ts): its cost does not
depend on how long the user's history is, nor on how many user ids share the client. Walking the
client's events by time, as before, made a client of thousands of user ids cost quadratic time, and so
did a user with answers but no message (each answer walked the whole history back).

A message that arrives late (earlier than answers already stored) changes the values of rows stored
before it. So after each insert the stored answers it changes are written again (``update_report_columns``),
and only those: the answers between a user's earliest new message and the next message after their
latest one. In the usual order there are none, and it is one seek. The stored values therefore always
equal what a look-up would find now. A user_id belongs to exactly one client, and merges, splits and
unlinks move a user id with all its events, so they change nothing here; erasing a client removes the
user's rows with their values.

A booking's look-backs (the client's first message, an earlier booking) are about the client, whose user
ids change with every merge and split: ``storage.bookings`` looks them up when the report reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from storage.clients import HISTORY_LOCKS, lock_identities
from storage.event_row import EventRow
from storage.event_types import EventType
from storage.models import DERIVED_EVENT_COLUMNS, sqlite_datetime

# Events whose arrival can change an answer's value: its own, or later answers' too.
HISTORY_EVENTS = frozenset({EventType.MESSAGE_RECEIVED, EventType.ASSISTANT_RESPONSE})
MESSAGES = frozenset({EventType.MESSAGE_RECEIVED})
# The rows that carry the value.
CARRIERS = frozenset({EventType.ASSISTANT_RESPONSE})
MAX_ID = 2**63 - 1


def _earlier(client_id: str, user_id: str, event: str, op: str, ts: str) -> str:
    """A user's events of one kind before (or after) a moment: a range of ix_events_client_user (a
    user_id never spans two clients; merges, splits and unlinks move a user id with all its events)."""
    return (
        f"FROM events AS earlier WHERE earlier.client_id = {client_id} AND earlier.user_id = {user_id}"
        f" AND earlier.event = '{event}' AND earlier.ts {op} {ts}"
    )


def _latest_message(client_id: str, user_id: str, ts: str) -> str:
    """The user's latest message at or before a row whose client, user and time are these SQL
    expressions. The one definition that the INSERT, the recompute and the PostgreSQL look-up all use,
    each a seek in ix_events_client_user."""
    messages_until_row = _earlier(client_id, user_id, EventType.MESSAGE_RECEIVED, "<=", ts)
    return f"(SELECT earlier.ts {messages_until_row} ORDER BY earlier.ts DESC LIMIT 1)"


def sqlite_lookbacks(client_id: int, user_id: int, ts: int, event: int) -> str:
    """``DERIVED_EVENT_COLUMNS`` as SQL for an INSERT's VALUES, from the row's own numbered parameters:
    an answer's latest message, nothing for any other event."""
    latest = _latest_message(f"?{client_id}", f"?{user_id}", f"?{ts}")
    return f"CASE WHEN ?{event} = '{EventType.ASSISTANT_RESPONSE}' THEN {latest} END"


@dataclass(frozen=True, slots=True)
class _Dialect:
    """What the recompute's SQL says differently: the rows it updates (SQLite is told to walk them in
    ix_events_client_user: left to itself it took ix_events_event_ts, a walk through every user's events
    of the kind), null-safe "not equal" (SQLite's IS NOT; its IS DISTINCT FROM needs 3.39, newer than
    some distributions ship) and a moment after every other."""

    events: str
    differs: str
    never: str


_SQLITE = _Dialect("events INDEXED BY ix_events_client_user", "IS NOT", "'9999-12-31'")
_POSTGRES = _Dialect("events", "IS DISTINCT FROM", "'infinity'")
# Named parameters throughout, which SQLAlchemy's text() (PostgreSQL) and the sqlite3 driver (the SQLite
# hot path) both take; "up to row up_to_id": only rows stored before the insert, whose values it may change.
_MINE = "events.client_id = :of_client AND events.user_id = :of_user AND events.id <= :up_to_id"
_ANSWER = f"events.event = '{EventType.ASSISTANT_RESPONSE}'"
_OWN_LATEST_MESSAGE = _latest_message("events.client_id", "events.user_id", "events.ts")


def _recompute_sql(dialect: _Dialect) -> str:
    """One user's answers from ``since`` on worked out again from the definition; only the rows whose
    value changes are written (a row written unchanged still costs its page in the WAL)."""
    return (
        f"UPDATE {dialect.events} SET reply_to_ts = {_OWN_LATEST_MESSAGE}"
        f" WHERE {_MINE} AND {_ANSWER} AND events.ts >= :since"
        f" AND events.reply_to_ts {dialect.differs} ({_OWN_LATEST_MESSAGE})"
    )


def _answers_sql(dialect: _Dialect) -> str:
    """New messages from ``since`` to ``until``: the answers from the first of them up to the next message
    after the last reply to something else now, or still to what they did."""
    messages_after = _earlier(":of_client", ":of_user", EventType.MESSAGE_RECEIVED, ">", ":until")
    next_message = f"(SELECT earlier.ts {messages_after} ORDER BY earlier.ts ASC LIMIT 1)"
    return (
        f"UPDATE {dialect.events} SET reply_to_ts = {_OWN_LATEST_MESSAGE}"
        f" WHERE {_MINE} AND {_ANSWER} AND events.ts >= :since"
        f" AND events.ts < coalesce({next_message}, {dialect.never})"
        f" AND events.reply_to_ts {dialect.differs} ({_OWN_LATEST_MESSAGE})"
    )


@dataclass(frozen=True, slots=True)
class _Statements:
    recompute: str
    answers: str

    @classmethod
    def of(cls, dialect: _Dialect) -> _Statements:
        return cls(_recompute_sql(dialect), _answers_sql(dialect))


_STATEMENTS = {"sqlite": _Statements.of(_SQLITE), "postgresql": _Statements.of(_POSTGRES)}


def insert_order(row: EventRow) -> tuple[datetime, bool]:
    """Time order, a message first among events of one moment (an answer at the same moment replies to it)."""
    return row["ts"], row["event"] != EventType.MESSAGE_RECEIVED


def _span_per_user(
    rows: Iterable[EventRow], kinds: frozenset[str]
) -> dict[tuple[int, str], tuple[datetime, datetime]]:
    """Per (client, user), the earliest and the latest moment of their rows of these kinds."""
    spans: dict[tuple[int, str], tuple[datetime, datetime]] = {}
    for row in rows:
        if row["event"] in kinds:
            moment, key = row["ts"], (row["client_id"], row["user_id"])
            first, last = spans.get(key, (moment, moment))
            spans[key] = (min(first, moment), max(last, moment))
    return spans


def lock_histories(conn: Connection, rows: Iterable[EventRow]) -> None:
    """PostgreSQL, before the rows' values are looked up: several processes must not each miss the other's
    new events of one user. Whoever comes second waits here, then sees the first one's rows (READ
    COMMITTED). A lock space of its own, taken after the identity locks."""
    users = {row["user_id"] for row in rows if row["event"] in HISTORY_EVENTS}
    if users:
        lock_identities(conn, [("user", user_id) for user_id in users], HISTORY_LOCKS)


_POSTGRES_STORED_LOOKBACKS = text(
    f"SELECT {_latest_message('row.client_id', 'row.user_id', 'row.ts')}"
    " FROM unnest(CAST(:client_ids AS bigint[]), CAST(:user_ids AS text[]), CAST(:moments AS timestamptz[]))"
    " WITH ORDINALITY AS row(client_id, user_id, ts, n) ORDER BY row.n"
)


def with_lookbacks(conn: Connection, rows: list[EventRow]) -> list[dict[str, Any]]:
    """PostgreSQL: the rows in insert order, each answer with its value, for one multi-row INSERT (whose
    rows do not see each other): what the stored history gives, looked up in one statement, combined with
    what the batch's own earlier rows give."""
    in_order = sorted(rows, key=insert_order)
    carriers = [row for row in in_order if row["event"] in CARRIERS]
    stored: Iterable[datetime | None] = (
        conn.execute(
            _POSTGRES_STORED_LOOKBACKS,
            {
                "client_ids": [row["client_id"] for row in carriers],
                "user_ids": [row["user_id"] for row in carriers],
                "moments": [row["ts"] for row in carriers],
            },
        ).scalars()
        if carriers
        else []
    )
    found = dict(zip((id(row) for row in carriers), stored, strict=True))
    latest: dict[str, datetime] = {}  # per user, of the batch's rows so far: the latest message
    result = []
    for row in in_order:
        values = dict.fromkeys(DERIVED_EVENT_COLUMNS)
        if row["event"] in CARRIERS:
            in_batch = latest.get(row["user_id"])
            stored_latest = found[id(row)]
            values["reply_to_ts"] = max(
                (moment for moment in (stored_latest, in_batch) if moment is not None), default=None
            )
        elif row["event"] == EventType.MESSAGE_RECEIVED:
            latest[row["user_id"]] = row["ts"]
        result.append({**row, **values})
    return result


def update_report_columns(
    conn: Connection, new_rows: Iterable[EventRow], *, up_to_id: int | None = None
) -> None:
    """After the insert of ``new_rows``, in its transaction: the stored answers it changes.

    ``up_to_id``: the last row id before the insert's rows, when they came with their own values; then
    only the older answers their messages change are written (module note). None: every answer of the
    users from their earliest of these rows on, new ones included, worked out again from the definition.
    """
    rows = list(new_rows)
    sqlite = conn.dialect.name == "sqlite"
    statements = _STATEMENTS["sqlite" if sqlite else "postgresql"]
    # SQLite takes the values as stored (the driver gets the text: on the ingest hot path, a seek per user
    # with a new message that usually finds nothing, SQLAlchemy's per-execution work cost more).
    moment: Callable[[datetime], Any] = sqlite_datetime if sqlite else _as_is
    if up_to_id is None:
        sql, params = statements.recompute, _params(_span_per_user(rows, HISTORY_EVENTS), MAX_ID, moment)
    else:
        messages = _span_per_user(rows, MESSAGES)
        sql, params = statements.answers, _params(messages, up_to_id, moment, until=True)
    if params and sqlite:
        conn.exec_driver_sql(sql, params)
    elif params:
        conn.execute(text(sql), params)


def _as_is(moment: datetime) -> datetime:
    return moment


def _params(
    spans: dict[tuple[int, str], tuple[datetime, datetime]],
    up_to_id: int,
    moment: Callable[[datetime], Any],
    *,
    until: bool = False,
) -> list[dict[str, Any]]:
    return [
        {"of_client": client_id, "of_user": user, "since": moment(first), "up_to_id": up_to_id}
        | ({"until": moment(last)} if until else {})
        for (client_id, user), (first, last) in spans.items()
    ]
