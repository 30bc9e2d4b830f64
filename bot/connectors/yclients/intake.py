"""YCLIENTS objects into LeadTrail: the webhook endpoint and the reconciliation both hand their records and
payments here. Each is compared with the record's last known state, the events are stored through the
same validated path as every source, and only then the new states are kept: a change is never marked
seen before its events are committed (a failure in between means the next delivery says it again, and
its events are duplicates)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
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
from storage.yclients import RecordState, note_webhook, record_states, save_record_states


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


def _key(hook: Webhook, field: str) -> tuple[int, int] | None:
    record_id = as_int(hook.data.get(field))
    return (hook.company_id, record_id) if record_id else None


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
        keys = [key for hook, _ in hooks for key in (_key(hook, "id"), _key(hook, "record_id")) if key]
        async with self._db.sessions() as session:
            states = await record_states(session, keys)
        events: list[dict[str, Any]] = []
        changed: dict[tuple[int, int], RecordState] = {}
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
            if mapped.state is not None:
                key = (mapped.state.company_id, mapped.state.record_id)
                states[key] = changed[key] = mapped.state
        if unreadable:
            await self._writer.write([], unreadable)
        outcome = await ingest_items(events, self._writer, self._zone, source=source)
        async with self._db.sessions() as session, session.begin():
            await save_record_states(session, list(changed.values()), now)
            if from_webhook:
                await note_webhook(session, (hook.company_id for hook, _ in hooks), now)
        result.accepted, result.duplicates = outcome.accepted, outcome.duplicates
        result.rejected = len(unreadable) + outcome.rejected
        return result

    def _map(self, hook: Webhook, states: dict[tuple[int, int], RecordState], now: datetime) -> Mapped | None:
        location = self._settings.location_of(hook.company_id)
        currency = self._settings.currency
        if hook.resource == RECORD:
            key = _key(hook, "id")
            previous = states.get(key) if key else None
            return map_record(hook, previous, self._zone, location=location, currency=currency, now=now)
        if hook.resource == FINANCES:
            record = states.get(key) if (key := _key(hook, "record_id")) else None
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
