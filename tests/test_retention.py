"""Retention on SQLite and on a real PostgreSQL: the person goes, the report numbers stay.

On SQLite the database files themselves are read after a checkpoint: what was erased must not be in any
byte of them, the full-text index included.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select

from bot.privacy import CLI_OWNER_ID, forget
from reports.owner_report import ReportScope, build_report
from reports.periods import Period
from storage.audit import recent_actions, record_action
from storage.database import Database
from storage.models import Client, ClientIdentity, OwnerAudit, QuarantinedPayload, StoredEvent
from storage.retention import (
    BLANKED_COLUMNS,
    PSEUDONYM_PREFIX,
    AnonymizationReport,
    anonymize_before,
    kept_extra,
)
from storage.search import SearchIndexer, search_clients
from storage.timeline import find_client_ids
from storage.writer import EventWriter, Rejected
from tests.test_storage import rows

MOSCOW = ZoneInfo("Europe/Moscow")
SECRET = b"test-secret-of-32-characters-000"
CUTOFF = datetime(2025, 3, 1, tzinfo=MOSCOW).astimezone(UTC)

ALSU = {
    "user_id": "tg_alsu_1001",
    "crm_id": "BX_555001",
    "phone": "+7 (917) 555-12-34",
    "name": "Алсу Гарипова",
    "channel": "telegram",
}
GUZEL = {"user_id": "ig_guzel_42", "channel": "instagram", "name": "Гузель Сафина"}
DANIYAR = {"user_id": "wa_79001112233", "channel": "whatsapp"}

# Written before HISTORY, as two clients that HISTORY's CRM id then merges: the writer rewrites the rows
# it moves, and the old copies stay in the pages' free space until the file is rebuilt.
FIRST_CONTACTS = [
    {
        "user_id": "tg_alsu_1001",
        "channel": "telegram",
        "timestamp": "2025-01-09T20:00:00",
        "event": "message_received",
        "name": "Алсу Р.",
        "message": "Добрый вечер",
    },
    {
        "user_id": "site_alsu_9",
        "crm_id": "BX_555001",
        "channel": "site",
        "timestamp": "2025-01-09T20:30:00",
        "event": "message_received",
        "message": "Пишу с сайта, хочу балаяжик",
    },
]
# Alsu and Guzel fell silent before the cutoff; Daniyar wrote before it and still writes after it.
HISTORY: list[dict[str, Any]] = [
    {
        **ALSU,
        "timestamp": "2025-01-10T10:00:00",
        "event": "message_received",
        "message": "Меня зовут Алсу, хочу окрашивание балаяжик",
        "lat": "55.7887",
        "lon": "49.1221",
        "utm_source": "vk",
        "favourite_master": "Лиля Шарипова",
        "birthday": "1990-05-05",
    },
    {
        **ALSU,
        "timestamp": "2025-01-10T10:00:02",
        "event": "assistant_response",
        "assistant_response": "Алсу, запишу вас на балаяжик в субботу",
        "prompt": "Клиентка Алсу Гарипова, телефон +7 (917) 555-12-34",
        "intent": "booking.request",
        "confidence": 0.9,
    },
    {**ALSU, "timestamp": "2025-01-10T10:05:00", "event": "lead_created", "lead_id": "lead_alsu_77"},
    {
        **ALSU,
        "timestamp": "2025-01-11T12:00:00",
        "event": "appointment_booked",
        "location": "Баумана",
        "service": "окрашивание",
        "appointment_at": "2025-01-18T11:00:00",
    },
    {
        **ALSU,
        "timestamp": "2025-01-18T13:00:00",
        "event": "payment_status",
        "status": "paid",
        "amount": 4500,
        "currency": "RUB",
        "location": "Баумана",
    },
    {**ALSU, "timestamp": "2025-02-01T09:00:00", "event": "appointment_booked", "location": "Баумана"},
    {**ALSU, "timestamp": "2025-02-08T11:00:00", "event": "no_show", "location": "Баумана"},
    {
        **GUZEL,
        "timestamp": "2025-02-15T18:00:00",
        "event": "message_received",
        "message": "Сколько стоит маникюр?",
    },
    {
        **GUZEL,
        "timestamp": "2025-02-15T18:00:01",
        "event": "assistant_response",
        "assistant_response": "Маникюр с покрытием — 1800 рублей",
        "intent": "price.question",
        "response_time_ms": 900,
    },
    {
        **GUZEL,
        "timestamp": "2025-02-15T18:10:00",
        "event": "refusal",
        "reason": "дорого",
        "scenario": "promo",
    },
    {
        **DANIYAR,
        "timestamp": "2025-02-20T19:00:00",
        "event": "message_received",
        "message": "Данияр Хайруллин, нужна стрижка фейдом",
        "name": "Данияр Хайруллин",
        "phone": "8 900 111-22-33",
    },
    {
        **DANIYAR,
        "timestamp": "2025-02-20T19:00:04",
        "event": "assistant_response",
        "assistant_response": "Фейд свободен в пятницу в 17:00",
        "intent": "booking.request",
    },
    {**DANIYAR, "timestamp": "2025-02-21T10:00:00", "event": "lead_created", "lead_id": "lead_dan_5"},
    # After the cutoff: the booking's first message and the repeat are found across it.
    {**DANIYAR, "timestamp": "2025-03-05T12:00:00", "event": "appointment_booked", "location": "Баумана"},
    {**DANIYAR, "timestamp": "2025-03-06T09:00:00", "event": "message_received", "message": "Спасибо, буду"},
    {
        **DANIYAR,
        "timestamp": "2025-03-06T09:00:05",
        "event": "assistant_response",
        "assistant_response": "Ждём вас!",
        "intent": "booking.confirm",
    },
]

# Everything that named Alsu and Guzel, and Daniyar's words from before the cutoff.
ERASED_BY_RETENTION = [
    "tg_alsu_1001",
    "BX_555001",
    "lead_alsu_77",
    "+7 (917) 555-12-34",
    "79175551234",
    "Алсу Гарипова",
    "алсу гарипова",
    "Алсу Р.",
    "алсу р.",
    "site_alsu_9",
    "Пишу с сайта, хочу балаяжик",
    "Лиля Шарипова",
    "1990-05-05",
    "балаяжик",
    "Меня зовут Алсу, хочу окрашивание балаяжик",
    "Алсу, запишу вас на балаяжик в субботу",
    "ig_guzel_42",
    "Гузель Сафина",
    "Сколько стоит маникюр?",
    "Маникюр с покрытием — 1800 рублей",
    "маникюр",
    "8 900 111-22-33",
    "Данияр Хайруллин, нужна стрижка фейдом",
    "фейдом",
    "Фейд свободен в пятницу в 17:00",
]
DANIYAR_TRACES = [
    "wa_79001112233",
    "79001112233",
    "lead_dan_5",
    "Данияр",
    "данияр",
    "Хайруллин",
    "Спасибо, буду",
    "Ждём вас!",
]
PERIODS = [
    Period(date(2025, 1, 1), date(2025, 1, 31)),
    Period(date(2025, 2, 1), date(2025, 2, 28)),
    Period(date(2025, 3, 1), date(2025, 3, 31)),
    Period(date(2025, 2, 15), date(2025, 3, 10)),
    Period(date(2025, 1, 1), date(2025, 3, 31)),
]
TABLES = (StoredEvent, Client, ClientIdentity, QuarantinedPayload, OwnerAudit)


async def write_history(db: Database, writer: EventWriter) -> None:
    for contact in FIRST_CONTACTS:
        await writer.write(rows(contact))
    await writer.write(rows(*HISTORY))
    await writer.write([], [Rejected("test", '{"user_id": "wa_79001112233", "timestamp": "вчера"}', [])])
    async with db.sessions() as session, session.begin():
        await session.execute(
            insert(QuarantinedPayload).values(
                received_at=datetime(2025, 1, 10, tzinfo=UTC),
                source="test",
                errors=[],
                payload='{"user_id": "tg_alsu_1001", "phone": "+7 (917) 555-12-34"}',
                payload_bytes=60,
            )
        )
    await SearchIndexer(db).catch_up()


async def reports(db: Database) -> list[dict[str, Any]]:
    async with db.sessions() as session:
        return [
            (await build_report(session, ReportScope(period, MOSCOW, 3.0))).report.as_json()
            for period in PERIODS
        ] + [(await build_report(session, ReportScope(PERIODS[-1], MOSCOW, 3.0, "Баумана"))).report.as_json()]


async def dump(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    async with db.sessions() as session:
        return {
            model.__tablename__: [
                tuple(row) for row in await session.execute(select(model.__table__).order_by("id"))
            ]
            for model in TABLES
        }


def dump_event(item: StoredEvent) -> dict[str, Any]:
    return {column.name: getattr(item, column.name) for column in StoredEvent.__table__.columns}


async def stored_events(db: Database) -> list[StoredEvent]:
    async with db.sessions() as session:
        return list((await session.execute(select(StoredEvent).order_by(StoredEvent.id))).scalars())


async def client_of(db: Database, user_id: str) -> list[int]:
    async with db.sessions() as session:
        return await find_client_ids(session, user_id)


async def file_bytes(db: Database) -> bytes:
    """The SQLite database and its WAL as they are on disk, after moving the WAL into the file."""
    async with db.engine.connect() as conn:
        await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return read_with_wal(Path(str(db.engine.url.database)))


def read_with_wal(path: Path) -> bytes:
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def found_in(data: bytes, strings: list[str]) -> list[str]:
    return [text for text in strings if text.encode() in data]


async def anonymize(db: Database, *, dry_run: bool = False) -> AnonymizationReport:
    return await anonymize_before(db, CUTOFF, SECRET, dry_run=dry_run, batch_size=4)


def counts(report: AnonymizationReport) -> tuple[int, int, int]:
    return report.events, report.clients, report.quarantined


async def test_old_events_lose_the_person_and_every_report_number_stays(
    db: Database, writer: EventWriter
) -> None:
    await write_history(db, writer)
    numbers_before = await reports(db)
    recent_before = [dump_event(item) for item in await stored_events(db) if item.ts >= CUTOFF]
    async with db.sessions() as session:
        assert [hit.client_id for hit in await search_clients(session, "балаяжик")] == await client_of(
            db, "tg_alsu_1001"
        )
    if db.is_sqlite:  # the check at the end can fail
        assert {"tg_alsu_1001", "балаяжик", "Лиля Шарипова", "8 900 111-22-33"} <= set(
            found_in(await file_bytes(db), ERASED_BY_RETENTION)
        )

    report = await anonymize_before(db, CUTOFF, SECRET, batch_size=4)

    assert counts(report) == (15, 2, 1)
    assert await reports(db) == numbers_before
    old = [item for item in await stored_events(db) if item.ts < CUTOFF]
    assert len(old) == 15
    for item in old:
        assert all(getattr(item, column) is None for column in BLANKED_COLUMNS)
        assert item.extra in (None, {"utm_source": "vk"})
        assert item.event_id.startswith(PSEUDONYM_PREFIX)
    silent = [item for item in old if item.channel != "whatsapp"]
    assert all(item.user_id.startswith(PSEUDONYM_PREFIX) for item in silent)
    assert len({item.user_id for item in silent}) == 3
    assert {item.crm_id is None or item.crm_id.startswith(PSEUDONYM_PREFIX) for item in silent} == {True}
    # Daniyar still writes: his ids stay on his old events, which his client row links to the new anyway.
    assert {item.user_id for item in old if item.channel == "whatsapp"} == {DANIYAR["user_id"]}
    assert [dump_event(item) for item in await stored_events(db) if item.ts >= CUTOFF] == recent_before

    assert await client_of(db, "tg_alsu_1001") == []
    assert await client_of(db, "+7 (917) 555-12-34") == []
    assert len(await client_of(db, "wa_79001112233")) == 1
    async with db.sessions() as session:
        assert await search_clients(session, "балаяжик") == []
        identities = list((await session.execute(select(ClientIdentity))).scalars())
        names = set((await session.execute(select(Client.name))).scalars())
        quarantined = list((await session.execute(select(QuarantinedPayload.payload))).scalars())
    silent_ids = [item for item in identities if item.client_id != (await client_of(db, "wa_79001112233"))[0]]
    assert silent_ids and all(item.value.startswith(PSEUDONYM_PREFIX) for item in silent_ids)
    assert "phone" not in {item.kind for item in silent_ids}
    assert names == {None, "Данияр Хайруллин"}
    assert quarantined == ['{"user_id": "wa_79001112233", "timestamp": "вчера"}']
    if db.is_sqlite:
        assert found_in(await file_bytes(db), ERASED_BY_RETENTION) == []


async def test_a_second_run_changes_nothing(db: Database, writer: EventWriter) -> None:
    await write_history(db, writer)
    await anonymize(db)
    state = await dump(db)
    again = await anonymize(db)
    assert counts(again) == (0, 0, 0)
    assert await dump(db) == state


async def test_dry_run_counts_exactly_what_the_run_then_does_and_writes_nothing(
    db: Database, writer: EventWriter
) -> None:
    await write_history(db, writer)
    state = await dump(db)
    planned = await anonymize(db, dry_run=True)
    assert await dump(db) == state
    done = await anonymize(db)
    assert planned.dry_run and not done.dry_run
    assert counts(planned) == counts(done)
    assert done.events > 0


async def test_a_client_who_writes_again_after_being_pseudonymised_is_a_new_client(
    db: Database, writer: EventWriter
) -> None:
    await write_history(db, writer)
    await anonymize(db)
    numbers = await reports(db)
    # The same writer, which knew her ids: the anonymisation told it (identity_epoch) to forget them.
    await writer.write(rows({**GUZEL, "timestamp": "2025-05-01T10:00:00", "event": "message_received"}))
    assert len(await client_of(db, "ig_guzel_42")) == 1
    instagram = {item.client_id for item in await stored_events(db) if item.channel == "instagram"}
    assert len(instagram) == 2  # not attached to her pseudonymised client row
    # Her new message is after every period compared, so no old number moves.
    assert await reports(db) == numbers
    later = await anonymize_before(db, datetime(2025, 12, 1, tzinfo=UTC), SECRET)
    assert later.clients == 2  # Daniyar, and Guzel as the new client she became
    users = {item.user_id for item in await stored_events(db) if item.channel == "instagram"}
    assert len(users) == 2 and all(user.startswith(PSEUDONYM_PREFIX) for user in users)


async def test_forget_leaves_no_trace_of_the_person_and_logs_only_that_it_was_done(
    db: Database, writer: EventWriter
) -> None:
    await write_history(db, writer)
    await anonymize(db)
    await record_action(db.sessions, 77, "client", "wa_79001112233")
    await record_action(db.sessions, 77, "client", "данияр")
    await record_action(db.sessions, 77, "client", "Гузель")
    # The writer trims the quarantine to its last 50 rows, freeing pages without zeroing them; the last
    # rejected payload of his is still in the table.
    for number in range(50):
        await writer.write(
            [], [Rejected("test", f'{{"user_id": "tg_other_{number}", "timestamp": "?"}}', [])]
        )
    await writer.write([], [Rejected("test", '{"user_id": "wa_79001112233", "timestamp": "завтра"}', [])])
    if db.is_sqlite:
        assert found_in(await file_bytes(db), DANIYAR_TRACES) == DANIYAR_TRACES

    report = await forget(db, "+7 (900) 111-22-33", owner_id=CLI_OWNER_ID)

    assert (report.clients, report.events, report.quarantined) == (1, 6, 1)
    assert await client_of(db, "wa_79001112233") == []
    async with db.sessions() as session:
        log = await recent_actions(session)
        remaining = [dump_event(item) for item in await stored_events(db)]
    assert (log[0].owner_id, log[0].action) == (0, "forget")
    assert "событий удалено: 6" in (log[0].details or "")
    details = " ".join(entry.details or "" for entry in log)
    assert [text for text in DANIYAR_TRACES if text in details] == []
    assert "Гузель" in details  # someone else's lookup stays as it was
    assert all("wa_" not in str(item) for item in remaining)
    if db.is_sqlite:
        assert found_in(await file_bytes(db), DANIYAR_TRACES) == []


async def test_forget_from_telegram_logs_the_owner_and_unknown_ids_erase_nothing(
    db: Database, writer: EventWriter
) -> None:
    await write_history(db, writer)
    state = await dump(db)
    report = await forget(db, "tg_nobody", owner_id=123456)
    assert report.clients == report.events == 0
    after = await dump(db)
    assert {name: rows for name, rows in after.items() if name != "owner_audit"} == {
        name: rows for name, rows in state.items() if name != "owner_audit"
    }
    async with db.sessions() as session:
        [entry] = await recent_actions(session)
    assert (entry.owner_id, entry.action, entry.details) == (123456, "forget", "клиент не найден")


def test_only_attribution_survives_in_extra() -> None:
    extra = {"utm_source": "vk", "utm": "ads", "source": "site", "email": "a@b.ru", "utm_term": {"x": 1}}
    assert kept_extra(extra) == {"utm_source": "vk", "utm": "ads", "source": "site"}
    assert kept_extra({"birthday": "1990-05-05"}) is None
    assert kept_extra(None) is None
