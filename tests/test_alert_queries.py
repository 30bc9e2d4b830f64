"""The alert rules' inputs gathered by real queries on SQLite and PostgreSQL, then judged by the rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.ingestion.validation import validate_items
from bot.settings import Settings
from reports.alerts import AlertInputs, AlertVerdict, Proportion, evaluate_all
from storage.alert_queries import days_before, gather_inputs
from storage.database import Database
from storage.models import QuarantinedPayload
from storage.writer import EventWriter

MOSCOW = ZoneInfo("Europe/Moscow")
NOW = datetime(2025, 3, 15, 14, 0, tzinfo=MOSCOW)
SETTINGS = Settings()


def event(kind: str, user: str, at: datetime, channel: str = "telegram", **fields: Any) -> dict[str, Any]:
    return {"timestamp": at.isoformat(), "event": kind, "user_id": user, "channel": channel, **fields}


async def store(writer: EventWriter, items: list[dict[str, Any]]) -> None:
    validated = validate_items(items, MOSCOW)
    assert validated.errors == []
    await writer.write(validated.rows)


async def gather(db: Database, now: datetime = NOW) -> AlertInputs:
    async with db.sessions() as session:
        return await gather_inputs(session, now, SETTINGS.tz, silence_hours=SETTINGS.alerts.silence_hours)


def verdict(inputs: AlertInputs, rule: str, scope: str = "") -> AlertVerdict:
    found = [
        item
        for item in evaluate_all(inputs, SETTINGS.alerts, SETTINGS.reports.sla_seconds)
        if (item.rule, item.scope) == (rule, scope)
    ]
    assert len(found) == 1
    return found[0]


def dialogs(day_start: datetime, prefix: str, clients: int, with_lead: int) -> list[dict[str, Any]]:
    """``clients`` people write, ten minutes apart; the first ``with_lead`` of them leave a lead."""
    items = []
    for number in range(clients):
        at = day_start + timedelta(minutes=10 * number)
        items.append(event("message_received", f"{prefix}_{number}", at))
        if number < with_lead:
            items.append(event("lead_created", f"{prefix}_{number}", at + timedelta(minutes=5)))
    return items


async def test_conversion_drop_counts_each_day_window_and_fires(db: Database, writer: EventWriter) -> None:
    items: list[dict[str, Any]] = []
    for days in range(1, 15):
        items += dialogs(NOW - timedelta(days=days, hours=6), f"d{days}", clients=30, with_lead=12)
    items += dialogs(NOW - timedelta(hours=6), "today", clients=30, with_lead=2)
    items += [
        # The window is [now − 24 h, now): its first instant counts, ``now`` itself does not.
        event("message_received", "edge_start", NOW - timedelta(days=1)),
        event("message_received", "edge_end", NOW),
        event("lead_created", "edge_end", NOW + timedelta(minutes=1)),
        # A lead of the day before does not convert today's dialog, nor is it a dialog of that day.
        event("message_received", "cross", NOW - timedelta(hours=2)),
        event("lead_created", "cross", NOW - timedelta(days=1, hours=1)),
        # Older than the 14 days of history: not counted.
        *dialogs(NOW - timedelta(days=15, hours=6), "old", clients=5, with_lead=5),
    ]
    await store(writer, items)
    inputs = await gather(db)
    assert inputs.conversion.recent == Proportion(2, 32)
    assert inputs.conversion.baseline == Proportion(168, 420)
    assert inputs.conversion.since == NOW - timedelta(days=1)
    drop = verdict(inputs, "conversion_drop")
    assert drop.firing
    assert drop.p_value is not None and drop.p_value < 0.001


async def test_conversion_of_a_small_salon_with_an_empty_day_stays_silent(
    db: Database, writer: EventWriter
) -> None:
    items: list[dict[str, Any]] = []
    for days in range(1, 15):
        items += dialogs(NOW - timedelta(days=days, hours=5), f"d{days}", clients=3, with_lead=1)
    items += dialogs(NOW - timedelta(hours=5), "today", clients=3, with_lead=0)
    await store(writer, items)
    inputs = await gather(db)
    assert (inputs.conversion.recent, inputs.conversion.baseline) == (Proportion(0, 3), Proportion(14, 42))
    assert not verdict(inputs, "conversion_drop").firing


def bookings_and_no_shows(first_day: int, days: int, bookings: int, no_shows: int) -> list[dict[str, Any]]:
    """Spread over ``days`` days ending ``first_day`` days before now."""
    items = []
    for number in range(bookings):
        at = NOW - timedelta(days=first_day + number % days, hours=3, minutes=number)
        items.append(event("appointment_booked", f"b{first_day}_{number}", at))
        if number < no_shows:
            items.append(event("no_show", f"b{first_day}_{number}", at + timedelta(hours=1)))
    return items


async def test_no_show_spike_compares_the_week_with_four_weeks_before(
    db: Database, writer: EventWriter
) -> None:
    items = bookings_and_no_shows(0, 7, bookings=40, no_shows=14)
    items += bookings_and_no_shows(7, 28, bookings=160, no_shows=16)
    items += bookings_and_no_shows(35, 5, bookings=10, no_shows=10)  # before the history
    items.append(event("no_show", "later", NOW + timedelta(hours=1)))
    await store(writer, items)
    inputs = await gather(db)
    assert inputs.no_shows.recent == Proportion(14, 40)
    assert inputs.no_shows.baseline == Proportion(16, 160)
    assert inputs.no_shows.since == NOW - timedelta(days=7)
    assert verdict(inputs, "no_show_spike").firing


async def test_no_show_spike_respects_the_minimum_bookings(db: Database, writer: EventWriter) -> None:
    await store(
        writer,
        bookings_and_no_shows(0, 7, bookings=19, no_shows=15) + bookings_and_no_shows(7, 28, 160, 16),
    )
    inputs = await gather(db)
    assert inputs.no_shows.recent == Proportion(15, 19)
    assert not verdict(inputs, "no_show_spike").firing


async def test_slow_ai_uses_given_and_derived_answer_times_of_the_last_hour(
    db: Database, writer: EventWriter
) -> None:
    items = [
        event("assistant_response", f"u{number}", NOW - timedelta(minutes=50 - number), response_time_ms=5000)
        for number in range(25)
    ]
    items += [
        event("message_received", "derived", NOW - timedelta(minutes=30)),
        event("assistant_response", "derived", NOW - timedelta(minutes=30) + timedelta(seconds=8)),
        event("assistant_response", "earlier", NOW - timedelta(minutes=61), response_time_ms=100),
        event("assistant_response", "later", NOW, response_time_ms=100),
    ]
    await store(writer, items)
    inputs = await gather(db)
    assert sorted(inputs.answers.seconds) == [5.0] * 25 + [8.0]
    slow = verdict(inputs, "slow_ai")
    assert slow.firing
    assert slow.numbers["answers"] == 26


async def test_slow_ai_needs_enough_answers(db: Database, writer: EventWriter) -> None:
    items = [
        event("assistant_response", f"u{number}", NOW - timedelta(minutes=number + 1), response_time_ms=9000)
        for number in range(19)
    ]
    await store(writer, items)
    assert not verdict(await gather(db), "slow_ai").firing


def local(days_ago: int, hour: int, minute: int = 0) -> datetime:
    """``hour:minute`` local time ``days_ago`` days before NOW's day (minutes may run past the hour)."""
    day = NOW.date() - timedelta(days=days_ago)
    return datetime.combine(day, datetime.min.time(), MOSCOW) + timedelta(hours=hour, minutes=minute)


async def test_source_silent_fires_for_the_channel_that_usually_speaks_now(
    db: Database, writer: EventWriter
) -> None:
    items = [
        event("message_received", f"tg{days}_{number}", local(days, 12, 9 * number))
        for days in range(1, 15)
        for number in range(10)
    ]
    items += [
        event("assistant_response", "tg1_0", local(1, 12, 1)),  # one client, however many events
        event("message_received", "tg_today", local(0, 11)),
        event("manager_message", "tg_today", local(0, 13)),  # a manager is not the assistant
    ]
    items += [event("message_received", f"site{days}", local(days, 12, 30), "site") for days in (1, 5, 9)]
    items += [
        event("message_received", "site_today", local(0, 11, 30), "site"),
        event("message_received", "wa_today", local(0, 13, 30), "whatsapp"),
    ]
    await store(writer, items)
    inputs = await gather(db)
    site_days = tuple(1 if days in (1, 5, 9) else 0 for days in range(1, 15))
    assert {item.channel: (item.last_event_at, item.clients_per_day) for item in inputs.channels} == {
        "": (local(0, 13, 30).astimezone(UTC), tuple(10 + clients for clients in site_days)),
        "telegram": (local(0, 11).astimezone(UTC), (10,) * 14),
        "site": (local(0, 11, 30).astimezone(UTC), site_days),
        "whatsapp": (local(0, 13, 30).astimezone(UTC), (0,) * 14),
    }
    silent = verdict(inputs, "source_silent", "telegram")
    assert silent.firing
    assert silent.value == pytest.approx(3.0)
    assert [
        scope for scope in ("", "site", "whatsapp") if verdict(inputs, "source_silent", scope).firing
    ] == []

    # Into the night the channel is usually quiet, but the stretch since 11:00 still covers its busy hours.
    assert verdict(await gather(db, local(0, 23)), "source_silent", "telegram").firing
    # Two days later it is compared with the days before the quiet, not with the quiet itself...
    later = await gather(db, local(-2, 14))
    assert [item.clients_per_day for item in later.channels if item.channel == "telegram"] == [(10,) * 14]
    assert verdict(later, "source_silent", "telegram").firing
    # ...and all channels together are silent too: the whole assistant is down.
    assert verdict(later, "source_silent", "").firing
    # Before 13:00 it has not been quiet for two hours yet.
    assert not verdict(await gather(db, local(0, 12, 59)), "source_silent", "telegram").firing
    # An event at the very moment is not seen yet; once it is, the rule stops firing ("resolved" can follow).
    await store(writer, [event("assistant_response", "tg_today", NOW)])
    assert verdict(await gather(db), "source_silent", "telegram").firing
    assert not verdict(await gather(db, local(0, 14, 10)), "source_silent", "telegram").firing


async def test_ingest_errors_count_the_last_hour_of_quarantine(db: Database) -> None:
    def payload(at: datetime, source: str, message: str) -> QuarantinedPayload:
        errors = [{"index": 0, "field": "timestamp", "message": message}]
        return QuarantinedPayload(received_at=at, source=source, errors=errors, payload="{}", payload_bytes=2)

    async with db.sessions() as session:
        session.add_all(payload(NOW - timedelta(hours=2, minutes=n), "old", "old") for n in range(5))
        session.add_all(payload(NOW - timedelta(minutes=59 - n), "http", f"bad {n}") for n in range(12))
        session.add(payload(NOW, "http", "too late"))
        await session.commit()
    inputs = await gather(db)
    rejections = inputs.rejections
    assert rejections.count == 12
    assert rejections.first_at == NOW - timedelta(minutes=59)
    assert (rejections.latest_source, rejections.latest_reason) == ("http", "timestamp: bad 11")
    errors = verdict(inputs, "ingest_errors")
    assert errors.firing
    assert errors.value == 12


async def test_empty_database_fires_nothing(db: Database) -> None:
    inputs = await gather(db)
    assert inputs.channels == ()
    verdicts = evaluate_all(inputs, SETTINGS.alerts, SETTINGS.reports.sla_seconds)
    assert [item.rule for item in verdicts] == [
        "conversion_drop",
        "no_show_spike",
        "slow_ai",
        "ingest_errors",
    ]
    assert not any(item.firing for item in verdicts)


def test_days_before_keeps_the_local_hour_across_a_dst_change() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    after_change = datetime(2025, 3, 31, 12, 0, tzinfo=berlin)
    assert days_before(after_change, 2, berlin) == datetime(2025, 3, 29, 12, 0, tzinfo=berlin)
    assert after_change - days_before(after_change, 2, berlin) == timedelta(hours=47)


async def test_naive_moment_is_refused(db: Database) -> None:
    with pytest.raises(ValueError, match="aware"):
        await gather(db, datetime(2025, 3, 15, 14, 0))
