"""Model calls from OTLP traces, each on its client: at once when the trace names its user, else after a
durable wait for the span that does (design.md, "Model calls: OTLP/HTTP").

An auto-instrumented call (``chat yandexgpt-pro``) carries model and tokens but no user; the assistant's
handler span, its parent, carries ``user.id``, and with ``SimpleSpanProcessor`` it arrives after the
child, in a request of its own. So a call's user is, in order: its own span's, another span's of the
same request, one an earlier request named for the trace (on a handler span, kept in ``trace_users``,
or on a model call stored as an event); else the call waits in ``pending_spans`` (committed before the
200) for up to ``ai.trace_wait_seconds``. A request whose model calls all name their own users writes
nothing but their events. A request that names
a trace's user releases that trace's waiting calls before it is answered; ``leadtrail run`` releases
the rest every few seconds (``bot.runtime.trace_sweeper``): to their trace's user, or, once the wait is
over, to ``unattributed``. Storing a call and forgetting it as waiting are two transactions; between them
a crash leaves it waiting, and storing it again is a duplicate (its id is the trace and span id).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from functools import partial
from typing import Any

from bot.ingestion.otlp_decode import SpanRecord
from bot.ingestion.otlp_mapping import is_model_call, model_call_item, named_user, usable_user
from bot.ingestion.pipeline import ingest_items, quarantined
from bot.ingestion.validation import validate_items
from reports.pricing import PriceTable
from storage.database import Database
from storage.pending_spans import (
    CHUNK,
    UNATTRIBUTED_USER,
    NamedUser,
    Waiting,
    WaitingCall,
    fields_of,
    keep_waiting,
    known_users,
    release,
    waiting_calls,
)
from storage.writer import EventWriter

logger = logging.getLogger(__name__)

SOURCE = "otlp"
SHOWN_ERRORS = 5  # reasons spelled out in partial_success; the count covers the rest

SpanCounter = Callable[[str, int], None]


@dataclass(slots=True)
class TraceIntake:
    """What became of one request's spans: ``stored`` model calls (new or already known), ``waiting``
    for their trace's user, ``ignored`` (not model calls), ``rejected`` with ``errors``."""

    stored: int = 0
    waiting: int = 0
    ignored: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    def message(self) -> str:
        shown = "; ".join(self.errors[:SHOWN_ERRORS])
        more = len(self.errors) - SHOWN_ERRORS
        return shown + (f"; and {more} more" if more > 0 else "")


@dataclass(frozen=True, slots=True)
class _Call:
    trace_id: str
    span_id: str
    item: dict[str, Any]

    @property
    def attributed(self) -> bool:
        return "user_id" in self.item


class TraceWaiter:
    def __init__(
        self,
        db: Database,
        writer: EventWriter,
        *,
        zone: tzinfo,
        prices: PriceTable | None,
        wait_seconds: float,
    ) -> None:
        self._db = db
        self._writer = writer
        self._zone = zone
        self._prices = prices
        self.wait = timedelta(seconds=wait_seconds)
        self._counters: list[SpanCounter] = []

    def observe(self, counter: SpanCounter) -> None:
        """``counter(outcome, spans)`` after each step (/metrics): stored (a model call stored at once),
        waiting, ignored (not a model call), rejected; and for each waiting call once it is released,
        attributed (to its trace's user) or unattributed."""
        self._counters.append(counter)

    def _count(self, outcome: str, spans: int) -> None:
        if spans:
            for counter in self._counters:
                counter(outcome, spans)

    async def receive(self, records: Sequence[SpanRecord], channels: frozenset[str] | None) -> TraceIntake:
        """Store what can be stored, keep what must wait, all committed before this returns."""
        intake = TraceIntake()
        named: dict[str, NamedUser] = {}
        handlers: list[NamedUser] = []  # users named on spans that are no event: kept for their trace
        calls: list[_Call] = []
        for record in records:
            model_call = is_model_call(record)
            if (user := named_user(record)) is not None and usable_user(user[1]):
                found = NamedUser(record.trace_id, user[1], user[0])
                _keep_best(named, found)
                if not model_call:
                    handlers.append(found)
            if model_call:
                calls.append(_Call(record.trace_id, record.span_id, model_call_item(record)))
            else:
                intake.ignored += 1
        await self._attribute(calls, named)
        await self._store(calls, named, handlers, channels, intake)
        for outcome in ("stored", "waiting", "ignored", "rejected"):
            self._count(outcome, getattr(intake, outcome))
        return intake

    async def _attribute(self, calls: list[_Call], named: dict[str, NamedUser]) -> None:
        """Give each call without a user of its own its trace's: from this request, else from earlier
        ones; without a wait, one that has none is unattributed at once."""
        unknown = [call.trace_id for call in calls if not call.attributed and call.trace_id not in named]
        earlier: dict[str, NamedUser] = {}
        if unknown:
            async with self._db.sessions() as session:
                earlier = await known_users(session, unknown)
        for call in calls:
            if call.attributed:
                continue
            if (user := named.get(call.trace_id) or earlier.get(call.trace_id)) is not None:
                call.item["user_id"] = user.user_id
            elif not self.wait:
                call.item["user_id"] = UNATTRIBUTED_USER

    async def _store(
        self,
        calls: list[_Call],
        named: dict[str, NamedUser],
        handlers: list[NamedUser],
        channels: frozenset[str] | None,
        intake: TraceIntake,
    ) -> None:
        # A waiting call is checked now, with a stand-in user, so a bad span is refused in this answer.
        items = [
            call.item if call.attributed else {**call.item, "user_id": UNATTRIBUTED_USER} for call in calls
        ]
        validated = validate_items(items, self._zone, channels=channels, prices=self._prices)
        refused = {error.index for error in validated.errors}
        intake.rejected = len(refused)
        intake.errors = [
            f"span {calls[error.index].span_id}: {error.field or 'span'}: {error.message}"
            for error in validated.errors
        ]
        good = [call for index, call in enumerate(calls) if index not in refused]
        rows = [row for call, row in zip(good, validated.rows, strict=True) if call.attributed]
        waiting = [
            WaitingCall(call.trace_id, call.span_id, call.item) for call in good if not call.attributed
        ]
        intake.stored, intake.waiting = len(rows), len(waiting)
        if handlers or waiting:
            await self._db.writes.run(
                partial(keep_waiting, users=handlers, calls=waiting, now=datetime.now(UTC))
            )
        if rows or refused:
            await self._writer.write(rows, quarantined(validated, SOURCE))
        # Read after our own commits: a request naming the user at the same moment either sees our waiting
        # calls, or committed its user (a handler's span, or a call stored as an event) before this read.
        completed = set(named) | {call.trace_id for call in waiting}
        if completed:
            async with self._db.sessions() as session:
                held = await waiting_calls(session, sorted(completed))
                users = (
                    await known_users(session, {call.trace_id for call in held} - set(named)) if held else {}
                )
            await self._release(held, {**users, **named}, cutoff=None)

    async def release_due(self, now: datetime) -> int:
        """Release the calls that are due (their trace named its user, or their wait is over) and forget
        the users traces named before the wait; returns how many calls were released."""
        cutoff = now - self.wait
        async with self._db.sessions() as session:
            held = await waiting_calls(session)
            # Every waiting trace against the handlers' users (cheap); the stored calls' users only for
            # the calls whose wait is over: a request storing a call already released its trace's calls.
            users = await known_users(session, {call.trace_id for call in held}, stored_calls=False)
            over = {call.trace_id for call in held if call.received_at <= cutoff} - set(users)
            users.update(await known_users(session, over) if over else {})
        return await self._release(held, users, cutoff=cutoff)

    async def _release(
        self, held: list[Waiting], users: dict[str, NamedUser], *, cutoff: datetime | None
    ) -> int:
        """Store the held calls whose trace has a user (or, before ``cutoff``, none), then forget them as
        waiting; with ``cutoff``, forget the users kept for traces seen before it too."""
        due = [
            call
            for call in held
            if call.trace_id in users or (cutoff is not None and call.received_at <= cutoff)
        ]
        for start in range(0, len(due), CHUNK):
            chunk = due[start : start + CHUNK]
            keys = [(call.trace_id, call.span_id) for call in chunk]
            async with self._db.sessions() as session:
                fields = await fields_of(session, keys)
            owners = [users.get(call.trace_id) for call in chunk]
            items = [
                {**fields[key], "user_id": owner.user_id if owner else UNATTRIBUTED_USER}
                for key, owner in zip(keys, owners, strict=True)
                if key in fields  # another process may have released it meanwhile
            ]
            outcome = await ingest_items(items, self._writer, self._zone, source=SOURCE, prices=self._prices)
            if outcome.errors:
                logger.warning("otlp: %d waiting model call(s) rejected on release", outcome.rejected)
            self._count("attributed", sum(1 for owner in owners if owner is not None))
            self._count("unattributed", sum(1 for owner in owners if owner is None))
            await self._db.writes.run(partial(release, calls=keys, users_seen_before=None))
        if cutoff is not None:
            await self._db.writes.run(partial(release, calls=[], users_seen_before=cutoff))
        return len(due)


def _keep_best(users: dict[str, NamedUser], user: NamedUser) -> None:
    """Of the users named for one trace, the best-ranked; the first seen on a tie."""
    known = users.get(user.trace_id)
    if known is None or user.rank < known.rank:
        users[user.trace_id] = user
