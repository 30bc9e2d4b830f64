"""Report metrics against hand-computed values, on SQLite and on PostgreSQL, written through the real writer.

The shared fixture (Moscow time, UTC+3) covers the period 10–11.03.2025, whose previous period is
08–09.03.2025; the comment on each event says what it contributes.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy
import pytest
from sqlalchemy import event as sa_event

from bot.ingestion.validation import validate_items
from reports.metrics import Report, compute_period, compute_report, ratio, top
from reports.owner_report import ReportScope, build_report
from reports.periods import Period, default_period, parse_period, period_between
from reports.quantiles import percentile
from reports.texts.html import MESSAGE_LIMIT, plain_text
from reports.texts.report import summary
from storage.aggregates import Breakdown, Funnel, ModelUsage, PeriodAggregates
from storage.database import Database, open_database
from storage.report_queries import load_period_aggregates
from storage.writer import EventWriter

MOSCOW = ZoneInfo("Europe/Moscow")
PERIOD = Period(date(2025, 3, 10), date(2025, 3, 11))
DESIGN_KEYS = [
    "period",
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
    "visits",
    "cancellations",
    "visit_rate",
    "no_show_rate",
    "ai_response_seconds",
    "first_message_to_booking_hours",
    "repeat_booking_share",
    "by_channel",
    "by_location",
    "top_intents",
    "refusal_reasons",
    "ai_cost",
    "followup",
]


def ev(user: str, channel: str, timestamp: str, event: str, **fields: Any) -> dict[str, Any]:
    return {"timestamp": timestamp, "event": event, "user_id": user, "channel": channel, **fields}


def a(timestamp: str, event: str, **fields: Any) -> dict[str, Any]:
    return ev("tg_a", "telegram", timestamp, event, location="Баумана", **fields)


def b(timestamp: str, event: str, **fields: Any) -> dict[str, Any]:
    return ev("wa_b", "whatsapp", timestamp, event, location="Ямашева", **fields)


def no_model_calls(*, per_lead_and_booking: float | None) -> dict[str, Any]:
    """``ai_cost`` of a period without model calls: zero, per lead and booking zero or null (none of them)."""
    return {
        "total": 0.0,
        "currency": "RUB",
        "calls": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "per_lead": per_lead_and_booking,
        "per_booking": per_lead_and_booking,
        "by_model": [],
        "unpriced_models": [],
    }


FIXTURE = [
    # tg_a's first message ever, before both periods; naive = Moscow time; no location yet.
    ev("tg_a", "telegram", "2025-03-05T10:00:00", "message_received"),
    a("2025-03-10T00:00:00", "message_received"),  # naive, exactly at the period's first midnight: inside
    a("2025-03-10T00:00:02.500+03:00", "assistant_response", intent="booking.request"),  # derived: 2.5 s
    a("2025-03-10T00:05:00+03:00", "lead_created"),
    a(
        "2025-03-10T00:10:00+03:00", "appointment_booked"
    ),  # 110 h 10 min after the first message; first booking
    a("2025-03-10T18:00:00+03:00", "payment_status", status="paid", amount=1500),
    b("2025-03-09T23:59:59+03:00", "message_received"),  # the previous period's last second
    # Given 1200 ms wins over the 11 s since the message.
    b("2025-03-10T00:00:10+03:00", "assistant_response", intent="booking.request", response_time_ms=1200),
    b("2025-03-10T09:00:00+03:00", "assistant_response", intent="price"),  # its message was before: 32401 s
    b("2025-03-10T12:00:00+03:00", "lead_created"),  # a lead without a message in the period
    b("2025-03-10T12:30:00+03:00", "payment_status", status="pending", amount=999),  # not paid: not counted
    ev("tg_c", "telegram", "2025-03-11T23:59:59.999+03:00", "message_received"),  # the last millisecond
    ev("tg_c", "telegram", "2025-03-12T00:00:00", "message_received"),  # naive next midnight: outside
    ev("tg_c", "telegram", "2025-03-11T20:00:00+03:00", "refusal", reason="нет вечерних слотов"),
    ev("tg_d", "telegram", "2025-03-11T10:00:00+03:00", "assistant_response", intent="price"),  # no message
    ev("tg_d", "telegram", "2025-03-11T10:05:00+03:00", "refusal", reason="нет вечерних слотов"),
    ev("tg_d", "telegram", "2025-03-11T10:06:00+03:00", "refusal", intent="price"),  # no reason: the intent
    ev("tg_d", "telegram", "2025-03-11T10:07:00+03:00", "refusal"),  # neither: "unknown"
    ev("ig_e", "instagram", "2025-03-01T12:00:00+03:00", "appointment_booked"),  # history
    ev("ig_e", "instagram", "2025-03-11T15:00:00+03:00", "appointment_booked"),  # a repeat; never wrote
    ev("ig_e", "instagram", "2025-03-11T16:00:00+03:00", "no_show"),
    ev("ig_e", "instagram", "2025-03-11T17:00:00+03:00", "payment_status", status="paid", amount=2000.5),
]

P95 = 2.5 + (32401 - 2.5) * 0.9
EXPECTED: dict[str, Any] = {
    "period": {"from": "2025-03-10", "to": "2025-03-11"},
    "clients": 2,
    "messages": 2,
    "ai_responses": 4,
    "leads": 2,
    "bookings": 2,
    "no_shows": 1,
    "refusals": 4,
    "payments_paid": 2,
    "revenue": 3500.5,
    "conversion_dialog_to_lead": 0.5,
    "conversion_lead_to_booking": 0.5,
    "visits": 0,
    "cancellations": 0,
    "visit_rate": 0.0,
    "no_show_rate": 0.5,
    "ai_response_seconds": {"p50": 2.5, "p95": pytest.approx(P95), "over_sla_share": pytest.approx(1 / 3)},
    "first_message_to_booking_hours": {"median": pytest.approx(110 + 10 / 60)},
    "repeat_booking_share": 0.5,
    "by_channel": {
        "instagram": {"clients": 0, "leads": 0, "bookings": 1},
        "telegram": {"clients": 2, "leads": 1, "bookings": 1},
        "whatsapp": {"clients": 0, "leads": 1, "bookings": 0},
    },
    "by_location": {
        "unknown": {"clients": 1, "leads": 0, "bookings": 1},
        "Баумана": {"clients": 1, "leads": 1, "bookings": 1},
        "Ямашева": {"clients": 0, "leads": 1, "bookings": 0},
    },
    "top_intents": [["booking.request", 2], ["price", 2]],
    "refusal_reasons": [["нет вечерних слотов", 2], ["price", 1], ["unknown", 1]],
    "ai_cost": no_model_calls(per_lead_and_booking=0.0),
    "followup": {"handled": 0, "rescued": 0},
}
EXPECTED_PREVIOUS: dict[str, Any] = {
    "period": {"from": "2025-03-08", "to": "2025-03-09"},
    "clients": 1,
    "messages": 1,
    "ai_responses": 0,
    "leads": 0,
    "bookings": 0,
    "no_shows": 0,
    "refusals": 0,
    "payments_paid": 0,
    "revenue": 0.0,
    "conversion_dialog_to_lead": 0.0,
    "conversion_lead_to_booking": None,
    "visits": 0,
    "cancellations": 0,
    "visit_rate": None,
    "no_show_rate": None,
    "ai_response_seconds": {"p50": None, "p95": None, "over_sla_share": None},
    "first_message_to_booking_hours": {"median": None},
    "repeat_booking_share": None,
    "by_channel": {"whatsapp": {"clients": 1, "leads": 0, "bookings": 0}},
    "by_location": {"Ямашева": {"clients": 1, "leads": 0, "bookings": 0}},
    "top_intents": [],
    "refusal_reasons": [],
    "ai_cost": no_model_calls(per_lead_and_booking=None),
    "followup": {"handled": 0, "rescued": 0},
}


def rows(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    validated = validate_items(items, MOSCOW)
    assert validated.errors == []
    return validated.rows


async def report_json(db: Database, period: Period = PERIOD, location: str | None = None) -> dict[str, Any]:
    async with db.sessions() as session:
        report = (await build_report(session, ReportScope(period, MOSCOW, 3, location))).report
    return report.as_json()


def report_of(current: PeriodAggregates, previous: PeriodAggregates, location: str | None = None) -> Report:
    """The report of PERIOD from its aggregates and the previous period's, as the builder computes it."""
    return compute_report(
        compute_period(PERIOD, current, sla_seconds=3, location=location),
        compute_period(PERIOD.previous(), previous, sla_seconds=3, location=location),
    )


async def test_every_metric_matches_hand_computed_values(db: Database, writer: EventWriter) -> None:
    # Out of order: newest first, in small writes, so answers arrive before their messages.
    backwards = list(reversed(FIXTURE))
    for start in range(0, len(backwards), 3):
        await writer.write(rows(backwards[start : start + 3]))
    data = await report_json(db)
    assert list(data) == [*DESIGN_KEYS, "previous"]
    previous = data.pop("previous")
    assert data == EXPECTED
    assert previous == EXPECTED_PREVIOUS


async def test_duplicates_count_once(db: Database, writer: EventWriter) -> None:
    # The same events twice in one batch, and the whole batch again later.
    await writer.write(rows(FIXTURE + FIXTURE[2:6]))
    again = await writer.write(rows(FIXTURE))
    assert again.accepted == 0
    data = await report_json(db)
    data.pop("previous")
    assert data == EXPECTED


async def test_empty_period_gives_zeros_and_nulls(db: Database, writer: EventWriter) -> None:
    await writer.write(rows(FIXTURE))
    data = await report_json(db, Period(date(2025, 6, 1), date(2025, 6, 1)))
    previous = data.pop("previous")
    assert data == {
        "period": {"from": "2025-06-01", "to": "2025-06-01"},
        **dict.fromkeys(
            ["clients", "messages", "ai_responses", "leads", "bookings", "no_shows", "refusals"], 0
        ),
        "payments_paid": 0,
        "revenue": 0.0,
        **dict.fromkeys(["conversion_dialog_to_lead", "conversion_lead_to_booking"]),
        "visits": 0,
        "cancellations": 0,
        "visit_rate": None,
        "no_show_rate": None,
        "ai_response_seconds": {"p50": None, "p95": None, "over_sla_share": None},
        "first_message_to_booking_hours": {"median": None},
        "repeat_booking_share": None,
        "by_channel": {},
        "top_intents": [],
        "refusal_reasons": [],
        "ai_cost": no_model_calls(per_lead_and_booking=None),
        "followup": {"handled": 0, "rescued": 0},
    }
    assert previous["period"] == {"from": "2025-05-31", "to": "2025-05-31"}
    assert "by_location" not in previous


@pytest.mark.parametrize(
    ("day", "messages"),
    [(date(2025, 3, 10), 1), (date(2025, 3, 11), 1), (date(2025, 3, 12), 1), (date(2025, 3, 9), 1)],
)
async def test_local_midnight_opens_the_new_day(
    db: Database, writer: EventWriter, day: date, messages: int
) -> None:
    await writer.write(rows(FIXTURE))
    data = await report_json(db, Period(day, day))
    assert data["messages"] == messages
    assert data["clients"] == 1
    # 10.03 00:00:00 is tg_a's; 11.03 23:59:59.999 and 12.03 00:00:00 are tg_c's; 09.03 23:59:59 is wa_b's.
    expected_channel = "whatsapp" if day.day == 9 else "telegram"
    assert data["by_channel"][expected_channel]["clients"] == 1


async def test_location_filter_counts_only_that_location(db: Database, writer: EventWriter) -> None:
    await writer.write(rows(FIXTURE))
    data = await report_json(db, location="Баумана")
    previous = data.pop("previous")
    assert {key: data[key] for key in DESIGN_KEYS[1:10]} == {
        "clients": 1,
        "messages": 1,
        "ai_responses": 1,
        "leads": 1,
        "bookings": 1,
        "no_shows": 0,
        "refusals": 0,
        "payments_paid": 1,
        "revenue": 1500.0,
    }
    assert data["conversion_dialog_to_lead"] == 1.0
    assert data["no_show_rate"] == 0.0
    assert data["repeat_booking_share"] == 0.0
    assert data["ai_response_seconds"] == {"p50": 2.5, "p95": 2.5, "over_sla_share": 0.0}
    # The first message had no location: the look-back sees the user's whole history.
    assert data["first_message_to_booking_hours"]["median"] == pytest.approx(110 + 10 / 60)
    assert data["by_location"] == {"Баумана": {"clients": 1, "leads": 1, "bookings": 1}}
    assert data["by_channel"] == {"telegram": {"clients": 1, "leads": 1, "bookings": 1}}
    assert data["top_intents"] == [["booking.request", 1]]
    assert previous["clients"] == 0
    assert previous["by_location"] == {}


async def test_answer_latency_uses_the_latest_message_at_or_before_it(
    db: Database, writer: EventWriter
) -> None:
    await writer.write(
        rows(
            [
                ev("tg_f", "telegram", "2025-03-10T10:00:00", "message_received"),
                ev("tg_f", "telegram", "2025-03-10T10:00:00", "assistant_response", message="same moment"),
                ev("tg_f", "telegram", "2025-03-10T10:01:00", "message_received"),  # after the next answer
                ev("tg_f", "telegram", "2025-03-10T10:00:30.250", "assistant_response"),
                # The same client's other channel is another user_id: its message does not count.
                ev("tg_g", "telegram", "2025-03-10T11:00:00", "message_received", crm_id="BX_1"),
                ev("wa_g", "whatsapp", "2025-03-10T11:00:05", "assistant_response", crm_id="BX_1"),
            ]
        )
    )
    data = await report_json(db)
    assert data["ai_responses"] == 3
    assert data["ai_response_seconds"] == {
        "p50": pytest.approx(15.125),
        "p95": pytest.approx(30.25 * 0.95),
        "over_sla_share": 0.5,
    }


async def test_repeat_booking_needs_an_earlier_booking_of_the_same_user(
    db: Database, writer: EventWriter
) -> None:
    await writer.write(
        rows(
            [
                ev("tg_h", "telegram", "2025-03-10T09:00:00", "message_received"),
                ev("tg_h", "telegram", "2025-03-10T12:00:00", "appointment_booked"),  # first: not a repeat
                ev("tg_h", "telegram", "2025-03-11T12:00:00", "appointment_booked"),  # repeat, same period
                ev(
                    "tg_i", "telegram", "2025-03-12T12:00:00", "appointment_booked"
                ),  # later, after the period
                ev("tg_i", "telegram", "2025-03-11T13:00:00", "appointment_booked"),  # first: not a repeat
            ]
        )
    )
    data = await report_json(db)
    assert data["bookings"] == 3
    assert data["repeat_booking_share"] == pytest.approx(1 / 3)
    # 3 h and 27 h after tg_h's only message; tg_i never wrote.
    assert data["first_message_to_booking_hours"] == {"median": pytest.approx(15.0)}


async def test_report_queries_use_the_indexes(tmp_path: Path) -> None:
    db = await open_database(f"sqlite+aiosqlite:///{tmp_path / 'plans.db'}")
    statements: list[tuple[str, Any]] = []

    def remember(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
    ) -> None:
        statements.append((statement, parameters))

    try:
        sa_event.listen(db.engine.sync_engine, "before_cursor_execute", remember)
        async with db.sessions() as session:
            await load_period_aggregates(session, PERIOD.utc_bounds(MOSCOW), "Баумана")
        sa_event.remove(db.engine.sync_engine, "before_cursor_execute", remember)
        assert len(statements) >= 6
        async with db.engine.connect() as conn:
            for statement, parameters in statements:
                plan = [
                    row[-1]
                    for row in await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
                ]
                searches = [step for step in plan if step.startswith(("SEARCH", "SCAN"))]
                for step in searches:
                    table = step.split()[1]
                    if table in {"events", "answer", "message", "booking"}:
                        assert "ix_events_" in step.split(" USING ")[-1], (statement, plan)
                        if "events.model" in statement:  # the AI cost: the model calls' own index alone
                            assert "COVERING INDEX ix_events_model_ts" in step, (statement, plan)
    finally:
        await db.close()


# Pure functions.


@pytest.mark.parametrize("size", [1, 2, 3, 7, 20, 101])
def test_percentile_equals_numpy_linear(size: int) -> None:
    rng = random.Random(size)
    values = [rng.uniform(0, 40) for _ in range(size)]
    for q in (0, 5, 25, 50, 90, 95, 99, 100):
        assert percentile(values, q) == float(numpy.percentile(values, q))


def test_percentile_by_hand() -> None:
    assert percentile([], 50) is None
    assert percentile([7.0], 95) == 7.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 95) == pytest.approx(4.8)


def test_ratio_and_top() -> None:
    assert ratio(0, 0) is None
    assert ratio(3, 4) == 0.75
    counts = {f"i{n:02d}": 1 for n in range(12)} | {"b": 5, "a": 5, "Б": 5}
    assert top(counts) == [("a", 5), ("b", 5), ("Б", 5)] + [(f"i{n:02d}", 1) for n in range(7)]


# 22:30 UTC on 10.03 is already 01:30 on 11.03 in Moscow.
NOW = datetime(2025, 3, 10, 22, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("today", date(2025, 3, 11), date(2025, 3, 11)),
        ("yesterday", date(2025, 3, 10), date(2025, 3, 10)),
        ("7d", date(2025, 3, 5), date(2025, 3, 11)),
        ("30d", date(2025, 2, 10), date(2025, 3, 11)),
        ("month", date(2025, 3, 1), date(2025, 3, 11)),
        ("2025-02-28", date(2025, 2, 28), date(2025, 2, 28)),
        ("2024-12-30..2025-01-02", date(2024, 12, 30), date(2025, 1, 2)),
        (" 7D ", date(2025, 3, 5), date(2025, 3, 11)),
    ],
)
def test_parse_period(text: str, start: date, end: date) -> None:
    assert parse_period(text, NOW, MOSCOW) == Period(start, end)


def test_naive_now_is_local_time() -> None:
    assert parse_period("today", datetime(2025, 3, 10, 23, 59), MOSCOW) == Period(
        date(2025, 3, 10), date(2025, 3, 10)
    )


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("week", "'week'"),
        ("2025-02-30", "'2025-02-30'"),
        ("2025-3-1", "'2025-3-1'"),
        ("2025-03-05..2025-03-01", "2025-03-05..2025-03-01"),
        ("2025-03-01..", "''"),
        ("0001-01-01", "'0001-01-01'"),
    ],
)
def test_bad_period_names_the_value(text: str, named: str) -> None:
    with pytest.raises(ValueError, match="bad") as error:
        parse_period(text, NOW, MOSCOW)
    assert named in str(error.value)


def test_period_bounds_previous_and_default() -> None:
    period = period_between("2025-03-10", "2025-03-11")
    assert period.days == 2
    assert period.utc_bounds(MOSCOW) == (
        datetime(2025, 3, 9, 21, tzinfo=UTC),
        datetime(2025, 3, 11, 21, tzinfo=UTC),
    )
    assert period.previous() == Period(date(2025, 3, 8), date(2025, 3, 9))
    month = parse_period("month", NOW, MOSCOW)
    assert month.previous() == Period(date(2025, 2, 18), date(2025, 2, 28))
    assert default_period(NOW, MOSCOW) == Period(date(2025, 3, 3), date(2025, 3, 10))
    # A zone with DST: the day of the switch has 23 hours, and the bounds are its real midnights.
    berlin = ZoneInfo("Europe/Berlin")
    start, end = Period(date(2025, 3, 30), date(2025, 3, 30)).utc_bounds(berlin)
    assert end - start == timedelta(hours=23)
    with pytest.raises(ValueError, match="before it starts"):
        Period(date(2025, 3, 2), date(2025, 3, 1))


# The owner's text.


def aggregates(**changes: Any) -> PeriodAggregates:
    funnel = Funnel(
        clients=17,
        clients_with_lead=9,
        clients_with_message_and_lead=9,
        clients_with_lead_and_booking=0,
        by_channel={"telegram": Breakdown(17, 9, 0)},
        by_location={None: Breakdown(17, 9, 0)},
    )
    base: dict[str, Any] = {
        "event_counts": {"message_received": 1234, "refusal": 8, "appointment_booked": 4},
        "funnel": funnel,
        "payments_paid": 3,
        "revenue": 45600.0,
        "intents": {},
        "refusal_reasons": {"нет вечерних слотов": 3, "<b>дорого</b> & далеко": 5},
        "response_seconds": [1.0, 2.0, 5.0],
        "first_message_to_booking_seconds": [],
        "repeat_bookings": 0,
    }
    return PeriodAggregates(**(base | changes))


def test_report_text_in_russian_with_changes_and_escaping() -> None:
    empty = aggregates(
        event_counts={},
        funnel=Funnel(0, 0, 0, 0, {}, {}),
        payments_paid=0,
        revenue=0.0,
        refusal_reasons={},
        response_seconds=[],
    )
    report = report_of(aggregates(), empty)
    text = summary(report, sla_seconds=3)
    assert "<b>📊 Отчёт за 10.03.2025 — 11.03.2025</b>" in text
    assert "в сравнении с 08.03.2025 — 09.03.2025: нет данных за прошлый период" in text
    assert "Сообщения: 1\u00a0234\n" in text  # nothing to compare with: no "▲ +1 234"
    assert "▲" not in text
    assert "Диалог → заявка: 52,9\u00a0%" in text  # 9 of 17
    assert "Заявка → запись: 0,0\u00a0%" in text
    assert "Неявки от записей: 0,0\u00a0%" in text
    assert "медиана: 2,0\u00a0с" in text
    assert "Дольше SLA (3\u00a0с): 33,3\u00a0%" in text
    assert "От первого сообщения до записи, медиана: —" in text
    assert "Выручка: 45\u00a0600\u00a0₽\n" in text
    assert "1. &lt;b&gt;дорого&lt;/b&gt; &amp; далеко — 5 (62,5\u00a0%)" in text
    assert "2. нет вечерних слотов — 3 (37,5\u00a0%)" in text

    back = report_of(empty, aggregates())
    back_text = summary(back, sla_seconds=3)
    assert "нет данных за прошлый период" not in back_text
    assert "Сообщения: 0 ▼ −1\u00a0234 (−100,0\u00a0%)" in back_text
    assert "Выручка: 0\u00a0₽ ▼ −45\u00a0600\u00a0₽ (−100,0\u00a0%)" in back_text
    assert "Диалог → заявка: —" in back_text
    assert "Отказов не было." in back_text

    plain = plain_text(text)
    assert "<" not in plain.replace("<b>дорого</b>", "")
    assert "1. <b>дорого</b> & далеко — 5" in plain


NASTY = '<"&'


def test_report_text_stays_within_telegram_limit() -> None:
    long = {f"{n}{NASTY * 90}": 100 - n for n in range(10)}
    models = tuple(
        ModelUsage(f"{n}{NASTY * 80}", currency, 10, 10_000, 1_000, priced, 12.5)
        for n in range(10)
        for currency, priced in (("RUB", 10), ("USD", 3), (None, 0))
    )
    raw = aggregates(refusal_reasons=long, model_usage=models)
    report = report_of(raw, raw, location='"&<>' * 64)
    text = summary(report, sla_seconds=3)
    assert len(text) < MESSAGE_LIMIT
    assert NASTY not in text
