"""The follow-up lists on SQLite and PostgreSQL: who each list holds, «Обработано» and what puts an item
back, ``--now`` in the past, a location, and the report's measured rescue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.ingestion.validation import validate_items
from reports.followup import FollowupLists, FollowupSettings
from reports.followup_check import followup_at
from reports.metrics import ReportScope
from reports.owner_report import build_report
from reports.periods import Period
from reports.texts import followup as texts
from storage.database import Database
from storage.followup_items import ListKind
from storage.followup_queries import mark_handled
from storage.models import FollowupMark, OutboxMessage
from storage.outbox import enqueue
from storage.retention import forget_client
from storage.timeline import find_client_ids
from storage.writer import EventWriter
from tests.followup_data import EXPECTED, WAITING_TEXT, followup_events

MOSCOW = ZoneInfo("Europe/Moscow")
NOW = datetime(2025, 3, 15, 14, 0, tzinfo=MOSCOW)
SETTINGS = FollowupSettings()


async def write(writer: EventWriter, items: list[dict[str, Any]]) -> None:
    validated = validate_items(items, MOSCOW)
    assert validated.errors == []
    await writer.write(validated.rows)


async def lists_at(db: Database, now: datetime = NOW, location: str | None = None) -> FollowupLists:
    return await followup_at(db.sessions, now, SETTINGS, location)


def who(lists: FollowupLists) -> dict[str, list[str]]:
    return {kind.value: [item.user_ids[0] for item in items] for kind, items in lists}


async def client_of(db: Database, user_id: str) -> int:
    async with db.sessions() as session:
        [client_id] = await find_client_ids(session, user_id)
    return client_id


async def handle(db: Database, user_id: str, kind: ListKind, at: datetime) -> None:
    async with db.sessions() as session, session.begin():
        mark_handled(session, await client_of(db, user_id), kind, since=at, at=at, by=3003)


async def test_each_list_holds_exactly_its_clients(db: Database, writer: EventWriter) -> None:
    await write(writer, followup_events(NOW))
    lists = await lists_at(db)
    assert who(lists) == EXPECTED

    [waiting] = lists.lists[ListKind.UNANSWERED]
    assert waiting.name == "Алсу Ждущая" and waiting.phone == "+79171000001"
    assert waiting.channel == "telegram" and waiting.message == WAITING_TEXT
    assert waiting.since == (NOW - timedelta(hours=1)).astimezone(UTC)
    assert texts.reason(waiting, lists.now, MOSCOW) == "ждёт ответа 1\xa0ч (сообщение 15.03 13:00)"
    [lead] = lists.lists[ListKind.LEADS_WITHOUT_BOOKING]
    assert lead.user_ids == ("tg_lead",) and lead.phone == "+79171000002"
    assert texts.reason(lead, lists.now, MOSCOW) == "заявка 13.03 14:01, записи нет"
    regular, payer = lists.lists[ListKind.REPEAT_DUE]
    assert "последний визит 23.01 14:00" in texts.reason(regular, lists.now, MOSCOW)
    assert "последняя оплата 14.01 14:00" in texts.reason(payer, lists.now, MOSCOW)

    # Nine minutes after the waiting client wrote is not yet "waiting"; a day and a bit later, no more.
    assert who(await lists_at(db, NOW - timedelta(minutes=51)))["unanswered"] == []
    assert who(await lists_at(db, NOW + timedelta(hours=23, minutes=30)))["unanswered"] == []


async def test_handled_item_leaves_its_list_until_the_clients_next_event(
    db: Database, writer: EventWriter
) -> None:
    await write(writer, followup_events(NOW))
    await handle(db, "tg_lead", ListKind.LEADS_WITHOUT_BOOKING, NOW - timedelta(minutes=20))
    await handle(db, "tg_wait", ListKind.UNANSWERED, NOW - timedelta(minutes=20))

    gone = who(await lists_at(db))
    assert gone["leads_without_booking"] == [] and gone["unanswered"] == []
    assert gone["no_shows"] == EXPECTED["no_shows"]  # other lists keep their clients
    # Before the marks were made, the lists were whole.
    assert who(await lists_at(db, NOW - timedelta(minutes=21))) == EXPECTED

    # The lead's client writes again: the lead is back (and the answer the assistant gives after it too).
    await write(
        writer,
        [
            {
                "timestamp": (NOW - timedelta(minutes=5)).isoformat(),
                "event": "message_received",
                "user_id": "tg_lead",
                "message": "Так что со стрижкой?",
                "channel": "telegram",
            }
        ],
    )
    back = await lists_at(db)
    assert who(back)["leads_without_booking"] == ["tg_lead"]
    assert who(back)["unanswered"] == []  # the waiting client's mark still holds: nothing new from them


async def test_a_location_limits_who_its_events_put_on_a_list(db: Database, writer: EventWriter) -> None:
    await write(writer, followup_events(NOW))
    at_baumana = who(await lists_at(db, location="Баумана"))
    assert at_baumana == {kind.value: [] for kind in ListKind} | {"leads_without_booking": ["tg_lead"]}


async def test_the_report_counts_handled_items_and_who_booked_within_a_week(
    db: Database, writer: EventWriter
) -> None:
    await write(writer, followup_events(NOW))
    day = NOW.date() - timedelta(days=1)
    morning = datetime.combine(day, datetime.min.time(), MOSCOW) + timedelta(hours=10)
    await handle(db, "tg_lead", ListKind.LEADS_WITHOUT_BOOKING, morning)
    await handle(db, "yc_noshow", ListKind.NO_SHOWS, morning)
    await handle(db, "yc_regular", ListKind.REPEAT_DUE, morning - timedelta(days=2))  # another period
    booked = [
        # The lead's client books six days after the call (counts); the no-show's eight days after (not).
        {"timestamp": (morning + timedelta(days=6)).isoformat(), "event": "appointment_booked",
         "user_id": "tg_lead"},
        {"timestamp": (morning + timedelta(days=8)).isoformat(), "event": "appointment_booked",
         "user_id": "yc_noshow"},
    ]  # fmt: skip
    await write(writer, booked)
    built = await build_report(db.sessions, ReportScope(Period(day, day), MOSCOW, 3.0))
    data = built.report.as_json()
    assert data["followup"] == {"handled": 2, "rescued": 1}
    assert data["previous"]["followup"] == {"handled": 0, "rescued": 0}
    assert "Обработано: 2, из них записались в течение 7 дней: 1 (50,0\xa0%)" in built.text


async def test_marks_and_messages_about_a_client_follow_merges_and_go_with_forget(
    db: Database, writer: EventWriter
) -> None:
    await write(writer, followup_events(NOW))
    await handle(db, "yc_noshow", ListKind.NO_SHOWS, NOW - timedelta(minutes=20))
    no_show = await client_of(db, "yc_noshow")
    async with db.sessions() as session, session.begin():
        await enqueue(
            session, kind="alert", channel="telegram", recipient="1", text="Нина", client_id=no_show
        )

    # The no-show turns out to be the lead's client (an older one): one person now, the mark and the
    # message move to the client that stays.
    await write(writer, [{"timestamp": NOW.isoformat(), "event": "lead_created", "user_id": "yc_noshow",
                          "lead_id": "L-1"}])  # fmt: skip
    survivor = await client_of(db, "tg_lead")
    assert await client_of(db, "yc_noshow") == survivor != no_show
    async with db.sessions() as session:
        assert set((await session.execute(select(FollowupMark.client_id))).scalars()) == {survivor}
        assert set((await session.execute(select(OutboxMessage.client_id))).scalars()) == {survivor}

    await forget_client(db, "tg_lead", redacted_as="—")
    async with db.sessions() as session:
        assert (await session.execute(select(FollowupMark))).first() is None
        assert (await session.execute(select(OutboxMessage))).first() is None
