"""YCLIENTS objects into LeadTrail: the webhook endpoint and the reconciliation both hand their records and
payments here. Each record is compared with its state as its stored events tell it, and the events are
stored through the same validated path as every source. The events are the only thing written per
webhook: a change is seen once its events are committed, never before, and a delivery repeated (or two
at once) makes the same event ids, so it is a duplicate."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

import orjson

from bot.connectors.yclients.mapping import (
    FINANCES,
    RECORD,
    BadWebhook,
    Mapped,
    Webhook,
    as_int,
    map_payment,
    map_record,
    read_webhook,
)
from bot.ingestion.pipeline import ingest_items
from bot.settings import YclientsSettings
from storage.database import Database
from storage.writer import EventWriter, Rejected
from storage.yclients import RecordState, note_webhook, record_states

WEBHOOK_NOTE_EVERY = timedelta(minutes=1)


@dataclass(slots=True)
class IntakeResult:
    """Events stored and repeated; objects of other resources ignored; objects that could not be read
    (kept in quarantine with the reason)."""

    accepted: int = 0
    duplicates: int = 0
    ignored: int = 0
    rejected: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "ignored": self.ignored,
            "rejected": self.rejected,
        }


def _record_of(hook: Webhook, field: str) -> str | None:
    record_id = as_int(hook.data.get(field))
    return str(record_id) if record_id else None


class YclientsIntake:
    def __init__(
        self,
        db: Database,
        writer: EventWriter,
        settings: YclientsSettings,
        zone: tzinfo,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._db = db
        self._writer = writer
        self._settings = settings
        self._zone = zone
        self._clock = clock
        self._noted: dict[int, datetime] = {}

    async def take(self, items: Sequence[Any], *, source: str, from_webhook: bool = True) -> IntakeResult:
        """Store what ``items`` (webhook objects, or records as the REST API returns them) mean."""
        now = self._clock()
        result = IntakeResult()
        hooks: list[tuple[Webhook, Any]] = []
        unreadable: list[Rejected] = []
        for item in items:
            try:
                hooks.append((read_webhook(item), item))
            except BadWebhook as exc:
                unreadable.append(self._rejected(item, str(exc), source))
        named = (_record_of(hook, "id" if hook.resource == RECORD else "record_id") for hook, _ in hooks)
        records = [record for record in named if record]
        async with self._db.sessions() as session:
            states = await record_states(session, records)
        events: list[dict[str, Any]] = []
        for hook, item in hooks:
            try:
                mapped = self._map(hook, states, now)
            except BadWebhook as exc:
                unreadable.append(self._rejected(item, str(exc), source))
                continue
            if mapped is None:
                result.ignored += 1
                continue
            events += mapped.events
            if mapped.state is not None:  # a second change of the record in this body compares with this
                states[mapped.state.record_id] = mapped.state
        if unreadable:
            await self._writer.write([], unreadable)
        outcome = await ingest_items(events, self._writer, self._zone, source=source)
        if from_webhook:
            await self._note_webhooks({hook.company_id for hook, _ in hooks}, now)
        result.accepted, result.duplicates = outcome.accepted, outcome.duplicates
        result.rejected = len(unreadable) + outcome.rejected
        return result

    async def _note_webhooks(self, company_ids: set[int], now: datetime) -> None:
        """When each company's webhooks last came (for /crm), written at most once a minute per company:
        one more write per webhook would make every webhook wait for the database's write lock."""
        due = {
            company
            for company in company_ids
            if now - self._noted.get(company, datetime.min.replace(tzinfo=UTC)) >= WEBHOOK_NOTE_EVERY
        }
        if not due:
            return
        async with self._db.sessions() as session, session.begin():
            await note_webhook(session, due, now)
        self._noted.update(dict.fromkeys(due, now))

    def _map(self, hook: Webhook, states: dict[str, RecordState], now: datetime) -> Mapped | None:
        location = self._settings.location_of(hook.company_id)
        currency = self._settings.currency
        if hook.resource == RECORD:
            record_id = _record_of(hook, "id")
            previous = states.get(record_id) if record_id else None
            return map_record(hook, previous, self._zone, location=location, currency=currency, now=now)
        if hook.resource == FINANCES:
            record = states.get(record_id) if (record_id := _record_of(hook, "record_id")) else None
            owner = record.user_id if record else None
            return map_payment(hook, owner, self._zone, location=location, currency=currency, now=now)
        return None

    @staticmethod
    def _rejected(item: Any, reason: str, source: str) -> Rejected:
        try:
            payload = orjson.dumps(item).decode()
        except TypeError:
            payload = repr(item)
        return Rejected(source=source, payload=payload, errors=[{"field": None, "message": reason}])
