"""YCLIENTS as a source: its webhooks read as a table of rules, the endpoint over real HTTP with the bad
inputs a real salon sends, the owner's numbers after a day of dialogs and bookings (SQLite and
PostgreSQL), and the reconciliation catching what a lost webhook would have said."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select, text

from bot.connectors.yclients.mapping import (
    CREATE,
    DELETE,
    FINANCES,
    RECORD,
    UPDATE,
    BadWebhook,
    map_payment,
    map_record,
    read_webhook,
)
from bot.ingestion.http_app import ServiceState
from bot.runtime.service import create_writer, start_ingest_site
from bot.settings import Settings
from storage.database import Database, open_database
from storage.models import QuarantinedPayload, StoredEvent
from storage.yclients import RecordState, note_sync, note_webhook
from tests.bot_harness import OWNER, bot_harness
from tests.fake_yclients import PARTNER_TOKEN, USER_TOKEN, FakeYclients
from tests.processes import free_port, leadtrail, running_service, write_config

MOSCOW = ZoneInfo("Europe/Moscow")
WEBHOOK_TOKEN = "yc-webhook-token-0123456789"
INGEST_TOKEN = "assistant-token-0123456789abcdef"
NOW = datetime(2026, 11, 20, 21, 0, tzinfo=UTC)
DAY = datetime(2026, 11, 20, tzinfo=MOSCOW)


def at(hour: int, minute: int = 0) -> datetime:
    return DAY.replace(hour=hour, minute=minute)


# --- the rules, as a table --------------------------------------------------------------------------


def mapped(fake: FakeYclients, status: str, data: dict[str, Any], previous: RecordState | None) -> Any:
    hook = read_webhook(fake.webhook(RECORD, status, data))
    return map_record(hook, previous, MOSCOW, location="Баумана", currency="RUB", now=NOW)


def test_a_record_never_seen_is_a_booking_with_its_details() -> None:
    fake = FakeYclients()
    record = fake.book(client_id=7001, phone="+79175551001", name="Айдар", at=at(18), created=at(10, 5))
    result = mapped(fake, CREATE, record, None)
    [booked] = result.events
    assert booked == {
        "event": "appointment_booked",
        "event_id": f"yc:{fake.company_id}:{record['id']}:booked",
        "timestamp": "2026-11-20T07:05:00.000+00:00",
        "user_id": "yc_7001",
        "channel": "yclients",
        "appointment_id": str(record["id"]),
        "location": "Баумана",
        "phone": "+79175551001",
        "name": "Айдар",
        "service": "Мужская стрижка",
        "amount": 1500.0,
        "currency": "RUB",
        "manager_id": "Артур",
        "appointment_at": "2026-11-20T15:00:00.000+00:00",
    }
    assert (result.state.attendance, result.state.deleted, result.state.user_id) == (0, False, "yc_7001")


@pytest.mark.parametrize(
    ("change", "events"),
    [
        ({"attendance": 2}, ["appointment_confirmed"]),
        ({"attendance": 1}, ["visit"]),
        ({"attendance": -1}, ["no_show"]),
        ({"attendance": 0}, []),
        ({"datetime": "2026-11-21T12:00:00+03:00"}, ["appointment_rescheduled"]),
        ({"deleted": True}, ["appointment_cancelled"]),
        ({"comment": "просил мастера Артура"}, []),
    ],
)
def test_a_change_against_the_last_state_says_what_happened(
    change: dict[str, Any], events: list[str]
) -> None:
    fake = FakeYclients()
    record = fake.book(client_id=7001, phone="+79175551001", name="Айдар", at=at(18), created=at(10))
    state = mapped(fake, CREATE, record, None).state
    changed = fake.change(record["id"], at(12), **change)
    result = mapped(fake, UPDATE, changed, state)
    assert [event["event"] for event in result.events] == events
    again = mapped(fake, UPDATE, changed, result.state)
    assert again.events == []  # the same change delivered again says nothing new


def test_deleted_by_status_and_late_deliveries() -> None:
    fake = FakeYclients()
    record = fake.book(client_id=7001, phone="+79175551001", name="Айдар", at=at(18), created=at(10))
    state = mapped(fake, CREATE, record, None).state
    came = mapped(fake, UPDATE, fake.change(record["id"], at(18, 40), attendance=1), state)
    older = {**record, "attendance": -1, "last_change_date": "2026-11-20T17:00:00+0300"}
    assert mapped(fake, UPDATE, older, came.state).events == []  # older than what LeadTrail saw
    cancelled = mapped(fake, DELETE, fake.change(record["id"], at(19)), came.state)
    assert [event["event"] for event in cancelled.events] == ["appointment_cancelled"]


def test_a_record_seen_first_with_a_change_is_booked_too() -> None:
    fake = FakeYclients()
    record = fake.book(client_id=7001, phone="+79175551001", name="Айдар", at=at(18), created=at(10))
    events = mapped(fake, UPDATE, fake.change(record["id"], at(18, 30), attendance=1), None).events
    assert [(event["event"], event["timestamp"]) for event in events] == [
        ("appointment_booked", "2026-11-20T07:00:00.000+00:00"),
        ("visit", "2026-11-20T15:30:00.000+00:00"),
    ]


def test_a_walk_in_without_a_client_card_is_its_own_client() -> None:
    fake = FakeYclients()
    record = fake.book(client_id=None, phone=None, name="", at=at(12), created=at(12))
    [booked] = mapped(fake, CREATE, record, None).events
    assert booked["user_id"] == f"yc_record_{record['id']}"
    assert "phone" not in booked and "name" not in booked


def test_payments_and_refunds() -> None:
    fake = FakeYclients()
    record = fake.book(client_id=7001, phone="+79175551001", name="Айдар", at=at(18), created=at(10))
    paid = read_webhook(fake.webhook(FINANCES, CREATE, fake.payment(record["id"], 1500, at(19), 42)))
    refund = read_webhook(fake.webhook(FINANCES, CREATE, fake.payment(record["id"], -500, at(20), 43)))
    options: dict[str, Any] = {"location": "Баумана", "currency": "RUB", "now": NOW}
    [payment] = map_payment(paid, None, MOSCOW, **options).events
    assert payment | {"event_id": "x"} == payment | {
        "event": "payment_status",
        "event_id": "x",
        "status": "paid",
        "amount": 1500.0,
        "appointment_id": str(record["id"]),
        "user_id": "yc_7001",
    }
    assert payment["event_id"] == f"yc:{fake.company_id}:payment:42"
    [returned] = map_payment(refund, None, MOSCOW, **options).events
    assert (returned["status"], returned["amount"]) == ("refunded", -500.0)
    anonymous = read_webhook(
        fake.webhook(FINANCES, CREATE, {**fake.payment(record["id"], 900, at(19), 44), "client": []})
    )
    assert map_payment(anonymous, "yc_7001", MOSCOW, **options).events[0]["user_id"] == "yc_7001"


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ([1, 2], "expected a JSON object"),
        ({"company_id": 1, "resource": "record", "status": "update"}, "data is missing"),
        ({"company_id": "x", "resource": "record", "data": {"id": 1}}, "company_id"),
    ],
)
def test_unreadable_objects_say_why(item: Any, reason: str) -> None:
    with pytest.raises(BadWebhook, match=reason):
        read_webhook(item)


# --- the endpoint over HTTP -------------------------------------------------------------------------


@dataclass
class Salon:
    url: str
    db: Database
    http: aiohttp.ClientSession
    fake: FakeYclients

    async def deliver(
        self, body: Any, token: str = WEBHOOK_TOKEN, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        async with self.http.post(
            f"{self.url}/v1/yclients/{token}",
            data=data,
            headers={"Content-Type": "application/json", **(headers or {})},
        ) as response:
            return response.status, await response.json()

    async def send(self, events: list[dict[str, Any]]) -> None:
        async with self.http.post(
            f"{self.url}/v1/events", json=events, headers={"Authorization": f"Bearer {INGEST_TOKEN}"}
        ) as response:
            assert response.status == 202, await response.text()

    async def count(self, model: Any = StoredEvent) -> int:
        async with self.db.sessions() as session:
            return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


def salon_settings(database_url: str, **yclients: Any) -> Settings:
    return Settings(
        database={"url": database_url},
        ingest={"tokens": [SecretStr(INGEST_TOKEN)]},
        yclients={"locations": {"555001": "Баумана"}, **yclients},
    )


@pytest.fixture
async def salon(database_url: str) -> AsyncIterator[Salon]:
    settings = salon_settings(database_url, webhook_token=WEBHOOK_TOKEN)
    db = await open_database(database_url)
    writer = create_writer(settings, db)
    await writer.start()
    runner, port = await start_ingest_site(settings, db, writer, ServiceState(), port=0)
    try:
        async with aiohttp.ClientSession() as http:
            yield Salon(f"http://127.0.0.1:{port}", db, http, FakeYclients())
    finally:
        await runner.cleanup()
        await writer.close()
        await db.close()


async def test_bad_inputs_get_their_answer_and_lose_nothing_else(salon: Salon) -> None:
    fake = salon.fake
    record = fake.webhook(
        RECORD, CREATE, fake.book(client_id=7001, phone="+7917", name="А", at=at(18), created=at(10))
    )
    assert (await salon.deliver(record, token="wrong-token-0000000000"))[0] == 401
    assert (await salon.deliver(b"{not json"))[0] == 400
    assert (await salon.deliver(b"42"))[0] == 400
    status, answer = await salon.deliver(record, headers={"Content-Encoding": "gzip"})  # says gzip, is not
    assert (status, answer["error"].startswith("the body cannot be read")) == (400, True)
    assert await salon.count() == 0

    walk_in = fake.webhook(
        RECORD, CREATE, fake.book(client_id=None, phone=None, name="", at=at(12), created=at(12))
    )
    goods = {
        "company_id": fake.company_id,
        "resource": "goods_operations_sale",
        "status": "create",
        "data": {"id": 5},
    }
    no_data = {"company_id": fake.company_id, "resource": "record", "status": "update"}
    status, body = await salon.deliver([record, goods, no_data, walk_in])
    assert (status, body) == (200, {"accepted": 2, "duplicates": 0, "ignored": 1, "rejected": 1})
    assert await salon.count(QuarantinedPayload) == 1
    # Delivered again: nothing changed against the record's state, so nothing new is stored.
    assert (await salon.deliver(record))[1] == {"accepted": 0, "duplicates": 0, "ignored": 0, "rejected": 0}
    assert await salon.count() == 2


async def test_the_link_is_off_until_a_token_is_configured(database_url: str) -> None:
    settings = salon_settings(database_url)
    db = await open_database(database_url)
    writer = create_writer(settings, db)
    await writer.start()
    runner, port = await start_ingest_site(settings, db, writer, ServiceState(), port=0)
    try:
        async with aiohttp.ClientSession() as http:
            off = Salon(f"http://127.0.0.1:{port}", db, http, FakeYclients())
            status, body = await off.deliver({"company_id": 1, "resource": "record", "data": {"id": 1}})
            assert status == 401 and "webhook_token" in body["error"]
    finally:
        await runner.cleanup()
        await writer.close()
        await db.close()


# --- a salon's day: dialogs in Telegram, bookings, visits and payments in YCLIENTS -------------------


def dialog(n: int) -> list[dict[str, Any]]:
    user = f"tg_{1000 + n}"
    base = {"user_id": user, "channel": "telegram"}
    return [
        {
            **base,
            "event": "message_received",
            "timestamp": at(9, n).isoformat(),
            "message": "Хочу на стрижку",
        },
        {**base, "event": "assistant_response", "timestamp": (at(9, n) + timedelta(seconds=2)).isoformat()},
        {
            **base,
            "event": "lead_created",
            "timestamp": (at(9, n) + timedelta(seconds=30)).isoformat(),
            "lead_id": f"lead_{n}",
            "phone": f"+7 917 555-10-{n:02d}",
        },
    ]


async def play_the_day(salon: Salon) -> tuple[FakeYclients, float]:
    """20 dialogs with leads; 16 of them book in YCLIENTS (8 logged by the assistant too), 2 walk-ins;
    10 visits with payments, 3 no-shows, one cancellation; every webhook delivered twice."""
    fake = salon.fake
    await salon.send([event for n in range(1, 21) for event in dialog(n)])
    hooks: list[dict[str, Any]] = []
    assistant: list[dict[str, Any]] = []
    records = []
    for n in range(1, 19):
        walk_in = n > 16
        record = fake.book(
            client_id=70_000 + n,
            phone=f"+7900123{n:04d}" if walk_in else f"+7917555{10:02d}{n:02d}",
            name=f"Клиент {n}",
            at=at(15, n),
            created=at(11, n),
            cost=1000.0 + n * 100,
        )
        records.append(record)
        hooks.append(fake.webhook(RECORD, CREATE, record))
        if n <= 8:  # the assistant booked through the YCLIENTS API and logged the booking itself
            assistant.append(
                {
                    "user_id": f"tg_{1000 + n}",
                    "channel": "telegram",
                    "event": "appointment_booked",
                    "timestamp": (at(11, n) - timedelta(seconds=3)).isoformat(),
                    "appointment_id": record["id"],
                }
            )
    revenue = 0.0
    for n, record in enumerate(records, start=1):
        if n <= 10:
            hooks.append(fake.webhook(RECORD, UPDATE, fake.change(record["id"], at(16, n), attendance=1)))
            amount = record["services"][0]["cost_to_pay"]
            revenue += amount
            hooks.append(
                fake.webhook(FINANCES, CREATE, fake.payment(record["id"], amount, at(16, 30 + n), n))
            )
        elif n <= 13:
            hooks.append(fake.webhook(RECORD, UPDATE, fake.change(record["id"], at(17, n), attendance=-1)))
        elif n == 14:
            hooks.append(fake.webhook(RECORD, DELETE, fake.change(record["id"], at(12, 30), deleted=True)))
    await salon.send(assistant)
    for hook in hooks:
        for _ in range(2):
            assert (await salon.deliver(hook))[0] == 200
    return fake, revenue


async def test_a_day_of_a_salon_counts_people_and_each_booking_once(salon: Salon, database_url: str) -> None:
    _, revenue = await play_the_day(salon)
    env = {"LEADTRAIL_DATABASE__URL": database_url}
    result = leadtrail("report", "--from", "2026-11-20", "--to", "2026-11-20", "--json", env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    numbers = {
        key: report[key] for key in ("bookings", "visits", "no_shows", "cancellations", "payments_paid")
    }
    assert numbers == {"bookings": 18, "visits": 10, "no_shows": 3, "cancellations": 1, "payments_paid": 10}
    assert report["revenue"] == revenue
    assert report["clients"] == 20 and report["leads"] == 20
    assert report["conversion_lead_to_booking"] == 0.8  # 16 of the 20 who left a lead booked
    assert report["visit_rate"] == pytest.approx(10 / 18)
    # A booking counts where its earliest report puts it: the assistant's eight name no location.
    assert {name: counts["bookings"] for name, counts in report["by_location"].items()} == {
        "Баумана": 10,
        "unknown": 8,
    }

    async with salon.db.sessions() as session:
        bi = (
            await session.execute(
                text("SELECT sum(bookings), sum(visits), sum(cancellations) FROM daily_metrics")
            )
        ).one()
    assert tuple(bi) == (18, 10, 1)  # the BI view counts as the report does

    shown = leadtrail("client", "+7 917 555-10-03", env=env)
    assert shown.returncode == 0, shown.stderr
    timeline = shown.stdout
    assert "tg_1003" in timeline and "yc_70003" in timeline
    for label in ("Сообщение клиента", "Заявка", "Запись", "Визит", "Оплата"):
        assert label in timeline, label
    assert timeline.count("📅 Запись") == 1  # the assistant's and YCLIENTS' report of it: one booking


# --- the reconciliation, inside leadtrail run ----------------------------------------------------------


async def test_changes_missed_while_leadtrail_was_down_arrive_once(tmp_path: Path, database_url: str) -> None:
    """Three pages of records (one deleted, one confirmed) read by the running service's reconciliation,
    at YCLIENTS' pace (the fake answers 429 to a sixth request within a second), then read again on the
    next rounds without storing anything twice."""
    async with FakeYclients() as fake:
        now = datetime.now(UTC)
        records = [
            fake.book(
                client_id=7000 + n,
                phone=f"+7917555{n:04d}",
                name=f"Клиент {n}",
                at=now + timedelta(hours=3),
                created=now - timedelta(hours=2, seconds=n),
            )
            for n in range(450)
        ]
        fake.change(records[0]["id"], now - timedelta(minutes=30), attendance=2)
        fake.change(records[1]["id"], now - timedelta(minutes=20), deleted=True)
        port = free_port()
        config = write_config(
            tmp_path / "config.toml",
            {
                "database": {"url": database_url},
                "ingest": {"port": port, "tokens": [INGEST_TOKEN]},
                "yclients": {
                    "partner_token": PARTNER_TOKEN,
                    "user_token": USER_TOKEN,
                    "company_ids": [fake.company_id],
                    "api_url": fake.api_url,
                    "sync_minutes": 0.02,
                },
            },
        )
        async with running_service(config, port, tmp_path / "run.log") as service:
            db = await open_database(database_url)
            try:
                for _ in range(300):
                    async with db.sessions() as session:
                        statement = select(StoredEvent.event, func.count()).group_by(StoredEvent.event)
                        stored = {str(event): int(count) for event, count in await session.execute(statement)}
                    if sum(stored.values()) >= 452 and len(fake.requests) >= 6:
                        break
                    await asyncio.sleep(0.1)
            finally:
                await db.close()
            assert await service.stop() == 0
        assert stored == {"appointment_booked": 450, "appointment_confirmed": 1, "appointment_cancelled": 1}
        assert fake.too_fast == 0
        assert {request["page"] for request in fake.requests} == {"1", "2", "3"}
        assert all(request["with_deleted"] == "1" for request in fake.requests)


# --- what the owner and the operator see of the link ------------------------------------------------


async def test_crm_command_shows_the_yclients_link(tmp_path: Path) -> None:
    sections = {"yclients": {"webhook_token": WEBHOOK_TOKEN, "partner_token": "p", "user_token": "u"}}
    async with bot_harness(
        tmp_path, sections={"yclients": {**sections["yclients"], "company_ids": [555001]}}
    ) as harness:
        async with harness.db.sessions() as session, session.begin():
            await note_webhook(session, [555001], NOW)
            await note_sync(session, 555001, NOW, until=None, error="HTTP 401: Необходима авторизация <x>")
        harness.api.send_private_message(OWNER, "/crm")
        [answer] = await harness.api.wait_for("sendMessage", timeout=30)
    text = answer.params["text"]
    assert "Связь с YCLIENTS" in text and "/v1/yclients/" in text and "каждые 30 мин" in text
    assert "Компания 555001: последний вебхук — 21.11.2026 00:00" in text
    assert "HTTP 401: Необходима авторизация &lt;x&gt;" in text


async def test_doctor_says_how_the_yclients_link_stands(tmp_path: Path) -> None:
    database = tmp_path / "doctor.db"
    base: dict[str, Any] = {"database": {"url": f"sqlite+aiosqlite:///{database}"}}
    partial = write_config(tmp_path / "partial.toml", {**base, "yclients": {"partner_token": "p"}})
    assert (
        "⚠️ yclients: для сверки через API заданы не все ключи"
        in leadtrail("doctor", "--config", str(partial)).stdout
    )
    full = {"partner_token": "p", "user_token": "u", "company_ids": [555001]}
    config = write_config(tmp_path / "full.toml", {**base, "yclients": full})
    db = await open_database(f"sqlite+aiosqlite:///{database}")
    try:
        async with db.sessions() as session, session.begin():
            await note_sync(session, 555001, NOW, until=None, error="HTTP 403: Нет доступа")
    finally:
        await db.close()
    output = leadtrail("doctor", "--config", str(config)).stdout
    assert "✅ yclients: вебхуки и сверка включены, компаний: 1" in output
    assert "⚠️ yclients: сверка компании 555001 не удалась (21.11.2026 00:00): HTTP 403: Нет доступа" in output
