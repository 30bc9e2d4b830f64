"""The BI views (migration 0006_bi_views) on SQLite and PostgreSQL, against numbers counted by hand."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from bot.ingestion.validation import validate_items
from storage.aggregates import Breakdown
from storage.bi_views import set_bi_zone
from storage.database import Database, open_database
from storage.models import BiSettings
from storage.report_queries import load_period_aggregates
from storage.writer import EventWriter
from tests.conftest import _fresh_postgres_database
from tests.processes import leadtrail, write_config

MOSCOW = ZoneInfo("Europe/Moscow")


def ev(
    event_id: str, user: str, at: str, event: str, channel: str = "telegram", **fields: Any
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "timestamp": f"2025-03-{at}+03:00",
        "event": event,
        "user_id": user,
        "channel": channel,
        **fields,
    }


EVENTS = [
    # 10 March, telegram. A writes (the message arrives twice), gets an answer, a lead, a booking, pays,
    # then does not come; B writes three times (once just before local midnight) and refuses;
    # D only has a lead.
    ev("a1", "tg_a", "10T10:00:00", "message_received", crm_id="BX_1", message="Хочу на стрижку"),
    ev("a1", "tg_a", "10T10:00:00", "message_received", crm_id="BX_1", message="Хочу на стрижку"),
    ev("a2", "tg_a", "10T10:01:00", "assistant_response", intent="booking.request"),
    ev("a3", "tg_a", "10T10:05:00", "lead_created"),
    ev("a4", "tg_a", "10T10:10:00", "appointment_booked"),
    ev("a5", "tg_a", "10T18:00:00", "payment_status", status="paid", amount=1500),
    ev("a6", "tg_a", "10T18:01:00", "payment_status", status="pending", amount=999),
    ev("a7", "tg_a", "10T19:00:00", "no_show"),
    ev("b1", "tg_b", "10T11:00:00", "message_received"),
    ev("b2", "tg_b", "10T11:05:00", "message_received"),
    ev("b3", "tg_b", "10T11:06:00", "assistant_response"),
    ev("b4", "tg_b", "10T11:10:00", "refusal", reason="дорого"),
    ev("b5", "tg_b", "10T23:59:30", "message_received"),
    ev("d1", "tg_d", "10T12:00:00", "lead_created"),
    # 00:00:30 local on 11 March is still 10 March in UTC.
    ev("e1", "tg_e", "11T00:00:30", "message_received"),
    # 10 March, whatsapp: C writes and becomes a lead.
    ev("c1", "wa_c", "10T09:00:00", "message_received", channel="whatsapp"),
    ev("c2", "wa_c", "10T09:30:00", "lead_created", channel="whatsapp"),
]

COLUMNS = [
    "clients",
    "messages",
    "ai_responses",
    "leads",
    "bookings",
    "no_shows",
    "refusals",
    "payments_paid",
    "revenue",
    "conversion_dialog_to_lead",
    "conversion_lead_to_booking",
    "no_show_rate",
]

# Counted by hand from EVENTS, in Moscow time.
EXPECTED_MOSCOW = {
    ("2025-03-10", "telegram"): (2, 4, 2, 2, 1, 1, 1, 1, 1500.0, 0.5, 0.5, 1.0),
    ("2025-03-10", "whatsapp"): (1, 1, 0, 1, 0, 0, 0, 0, 0.0, 1.0, 0.0, None),
    ("2025-03-11", "telegram"): (1, 1, 0, 0, 0, 0, 0, 0, 0.0, 0.0, None, None),
}


async def store(writer: EventWriter) -> None:
    validated = validate_items(EVENTS, MOSCOW)
    assert validated.errors == []
    result = await writer.write(validated.rows)
    assert (result.accepted, result.duplicates) == (len(EVENTS) - 1, 1)


async def daily_metrics(db: Database) -> dict[tuple[str, str], tuple[Any, ...]]:
    async with db.engine.connect() as conn:
        result = await conn.execute(text(f"SELECT day, channel, {', '.join(COLUMNS)} FROM daily_metrics"))
        return {(str(row[0]), row[1]): tuple(row[2:]) for row in result}


async def test_daily_metrics_counts_local_days_per_channel(db: Database, writer: EventWriter) -> None:
    await store(writer)
    async with db.engine.begin() as conn:
        await set_bi_zone(conn, MOSCOW)
    assert await daily_metrics(db) == EXPECTED_MOSCOW


async def test_daily_metrics_agree_with_the_report(db: Database, writer: EventWriter) -> None:
    await store(writer)
    day = (datetime(2025, 3, 10, tzinfo=MOSCOW), datetime(2025, 3, 11, tzinfo=MOSCOW))
    async with db.sessions() as session:
        report = await load_period_aggregates(session, (day[0].astimezone(UTC), day[1].astimezone(UTC)))
    rows = {
        channel: dict(zip(COLUMNS, values, strict=True))
        for (d, channel), values in (await daily_metrics(db)).items()
        if d == "2025-03-10"
    }
    assert {
        channel: Breakdown(row["clients"], row["leads"], row["bookings"]) for channel, row in rows.items()
    } == report.funnel.by_channel
    assert sum(row["messages"] for row in rows.values()) == report.event_counts["message_received"]
    assert sum(row["revenue"] for row in rows.values()) == report.revenue


async def test_the_zone_setting_moves_events_across_midnight(db: Database, writer: EventWriter) -> None:
    await store(writer)
    async with db.engine.begin() as conn:
        assert await set_bi_zone(conn, ZoneInfo("UTC")) is True
        assert await set_bi_zone(conn, ZoneInfo("UTC")) is False  # unchanged: nothing written
    telegram = {
        day: values for (day, channel), values in (await daily_metrics(db)).items() if channel == "telegram"
    }
    # In UTC both of B's late message and E's first one are on 10 March.
    assert list(telegram) == ["2025-03-10"]
    assert telegram["2025-03-10"][:2] == (3, 5)
    assert telegram["2025-03-10"][COLUMNS.index("conversion_dialog_to_lead")] == 1 / 3


async def test_events_flat_has_local_times_and_crm_ids_but_no_texts(
    db: Database, writer: EventWriter
) -> None:
    await store(writer)
    async with db.engine.begin() as conn:
        await set_bi_zone(conn, MOSCOW)
        result = await conn.execute(text("SELECT * FROM events_flat ORDER BY ts_utc, event_id"))
        rows = [dict(row._mapping) for row in result]
    assert len(rows) == len(EVENTS) - 1
    assert not {"message", "assistant_response", "prompt", "phone", "name", "lat", "lon", "extra"} & set(
        rows[0]
    )
    # What the model call behind an event cost, and the booking system's record, are BI columns too.
    assert {"appointment_id", "model", "input_tokens", "output_tokens", "cost", "currency"} <= set(rows[0])
    late = next(row for row in rows if row["event_id"] == "e1")
    assert str(late["local_day"]) == "2025-03-11"
    assert str(late["local_time"]).startswith("2025-03-11 00:00:30")
    assert {row["client_crm_id"] for row in rows if row["user_id"] == "tg_a"} == {"BX_1"}
    assert {row["client_crm_id"] for row in rows if row["user_id"] == "tg_b"} == {None}


async def test_a_command_points_the_views_at_the_configured_zone(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'leadtrail.db'}"
    config = write_config(
        tmp_path / "config.toml", {"timezone": "Asia/Yekaterinburg", "database": {"url": url}}
    )
    result = leadtrail(
        "report", "--from", "2025-03-10", "--to", "2025-03-10", "--json", "--config", str(config)
    )
    assert result.returncode == 0, result.stderr
    db = await open_database(url)
    try:
        async with db.sessions() as session:
            zone = (await session.execute(select(BiSettings))).scalar_one()
    finally:
        await db.close()
    assert (zone.timezone, zone.utc_offset_minutes) == ("Asia/Yekaterinburg", 300)


async def test_the_readme_bi_role_reads_the_views_but_not_the_tables(postgres_url: str) -> None:
    """The GRANTs the README gives, run as written, on a fresh PostgreSQL database."""
    url = make_url(await _fresh_postgres_database(postgres_url))
    db = await open_database(url.render_as_string(hide_password=False))
    role = f"leadtrail_bi_{uuid.uuid4().hex[:8]}"
    try:
        async with db.engine.begin() as conn:
            for statement in (
                f"CREATE ROLE {role} LOGIN PASSWORD 'long-random-password'",
                f'GRANT CONNECT ON DATABASE "{url.database}" TO {role}',
                f"GRANT USAGE ON SCHEMA public TO {role}",
                f"GRANT SELECT ON daily_metrics, events_flat TO {role}",
                f"ALTER ROLE {role} SET default_transaction_read_only = on",
            ):
                await conn.execute(text(statement))
        writer = EventWriter(db)
        await writer.start()
        try:
            await store(writer)
        finally:
            await writer.close()
        bi = await asyncpg.connect(
            host=url.host, port=url.port, user=role, password="long-random-password", database=url.database
        )
        try:
            assert await bi.fetchval("SELECT sum(messages) FROM daily_metrics") == 6
            assert await bi.fetchval("SELECT count(*) FROM events_flat") == len(EVENTS) - 1
            for table in ("events", "clients", "client_identities"):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await bi.fetchval(f"SELECT count(*) FROM {table}")
            with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
                await bi.execute("CREATE TEMP TABLE t (x int)")
        finally:
            await bi.close()
    finally:
        async with db.engine.begin() as conn:
            await conn.execute(text(f"DROP OWNED BY {role}"))
            await conn.execute(text(f"DROP ROLE {role}"))
        await db.close()
