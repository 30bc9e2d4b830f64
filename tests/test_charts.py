"""Report charts: every renderer yields a PNG that opens, for real, empty and hostile data; the chart
queries return hand-computed numbers on SQLite and PostgreSQL, local-zone midnights and DST included."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from matplotlib.transforms import Bbox
from PIL import Image

from bot.ingestion.validation import validate_items
from reports import charts
from reports.chart_data import ChartPeriod, DailyTrend, FunnelData, LatencyDistribution, WeekHourHeatmap
from reports.owner_report import ReportScope, build_report
from reports.periods import Period
from reports.texts import charts as chart_texts
from storage.aggregates import ClientJourney, DayCounts, JourneyEvent, WeekHourGrid, empty_grid, freeze_grid
from storage.chart_queries import client_journey, daily_counts, week_hour_counts
from storage.database import Database
from storage.local_time import offset_spans
from storage.timeline import find_client_ids
from storage.writer import EventWriter

MOSCOW = ZoneInfo("Europe/Moscow")
BERLIN = ZoneInfo("Europe/Berlin")
KOLKATA = ZoneInfo("Asia/Kolkata")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PERIOD = ChartPeriod(date(2025, 3, 1), date(2025, 3, 30), "Баумана")
HOSTILE = "$x^2$ </b> \u202eгадкий\u200f текст\u2067 💇\u200d♀\ufe0f " + "Ж" * 300
Renderer = Callable[[Any], bytes]


def open_png(data: bytes) -> Image.Image:
    assert data.startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(data))
    image.load()  # decodes every pixel: a truncated or corrupt stream fails here
    assert image.format == "PNG"
    assert image.size == (charts.WIDTH_PX, charts.HEIGHT_PX)
    return image


def grid(cells: dict[tuple[int, int], int]) -> WeekHourGrid:
    rows = empty_grid()
    for (day, hour), count in cells.items():
        rows[day][hour] = count
    return freeze_grid(rows)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(MOSCOW)


REAL: list[tuple[Renderer, Any]] = [
    (charts.render_funnel, FunnelData(PERIOD, 479, 262, 181, 150, 139, 26)),
    (
        charts.render_daily_trend,
        DailyTrend(
            PERIOD,
            tuple(
                DayCounts(PERIOD.first_day + timedelta(days=n), 10 + n % 7, 5 + n % 4, 3 + n % 3, 4 + n % 3)
                for n in range(30)
            ),
        ),
    ),
    (
        charts.render_latency,
        LatencyDistribution.from_seconds(PERIOD, [0.8, 1.1, 1.2, 1.2, 1.5, 2.0, 2.4, 3.5, 4.2, 9.0, 125.0]),
    ),
    (
        charts.render_heatmap,
        WeekHourHeatmap(
            PERIOD,
            freeze_grid(
                [[(day + 1) * max(0, 12 - abs(hour - 18)) for hour in range(24)] for day in range(7)]
            ),
            grid({(4, 19): 12, (5, 20): 7, (0, 18): 3}),
        ),
    ),
    (
        charts.render_client_journey,
        ClientJourney(
            7,
            "Диана Нуриева",
            (
                JourneyEvent(at("2025-03-01T10:00:00+03:00"), "message_received"),
                JourneyEvent(at("2025-03-01T10:00:02+03:00"), "assistant_response"),
                JourneyEvent(at("2025-03-01T10:05:00+03:00"), "lead_created"),
                JourneyEvent(at("2025-03-01T10:06:00+03:00"), "appointment_booked"),
                JourneyEvent(at("2025-03-03T19:10:00+03:00"), "no_show"),
                JourneyEvent(at("2025-03-03T20:00:00+03:00"), "manager_message"),
                JourneyEvent(at("2025-03-04T12:00:00+03:00"), "payment_status"),
                JourneyEvent(at("2025-03-05T18:00:00+03:00"), "refusal", "нет свободных вечерних слотов"),
            ),
        ),
    ),
]

EMPTY: list[tuple[Renderer, Any]] = [
    (charts.render_funnel, FunnelData(PERIOD, 0, 0, 0, 0, 0, 0)),
    (charts.render_daily_trend, DailyTrend(PERIOD, ())),
    (charts.render_daily_trend, DailyTrend(PERIOD, (DayCounts(PERIOD.first_day, 0, 0, 0, 0),))),
    (charts.render_latency, LatencyDistribution(PERIOD, ())),
    (charts.render_heatmap, WeekHourHeatmap(PERIOD, grid({}), grid({}))),
    (charts.render_client_journey, ClientJourney(1, None, ())),
]

# Shapes that break naive code: zero denominators, one point, zero spans, huge outliers.
EDGES: list[tuple[Renderer, Any]] = [
    (charts.render_funnel, FunnelData(PERIOD, 5, 0, 0, 0, 0, 0)),
    (charts.render_funnel, FunnelData(PERIOD, 0, 0, 2, 0, 0, 5)),
    (charts.render_daily_trend, DailyTrend(PERIOD, (DayCounts(PERIOD.first_day, 0, 2, 1, 0),))),
    (charts.render_latency, LatencyDistribution.from_seconds(PERIOD, [0.0], sla_seconds=0)),
    (charts.render_latency, LatencyDistribution.from_seconds(PERIOD, [3.0] * 5, sla_seconds=3.0)),
    (charts.render_latency, LatencyDistribution.from_seconds(PERIOD, [0.4] * 99 + [3600.0], sla_seconds=0.5)),
    (charts.render_heatmap, WeekHourHeatmap(PERIOD, grid({}), grid({(6, 23): 1}))),
    # A busy month: four-digit counts widen the colour bars' labels.
    (charts.render_heatmap, WeekHourHeatmap(PERIOD, grid({(0, 16): 8230, (3, 9): 512}), grid({(6, 1): 136}))),
    (
        charts.render_client_journey,
        ClientJourney(3, "", (JourneyEvent(at("2025-03-01T00:00:00+03:00"), "x"),)),
    ),
]


def ids(cases: list[tuple[Renderer, Any]]) -> list[str]:
    return [f"{renderer.__name__}-{n}" for n, (renderer, _) in enumerate(cases)]


@dataclass
class Drawn:
    """What reached the canvas during one test: each text with its box, and what went through mathtext."""

    texts: list[tuple[str, Bbox]] = field(default_factory=list)
    formulas: list[str] = field(default_factory=list)

    def strings(self) -> set[str]:
        return {text for text, _ in self.texts}

    def assert_inside_image(self) -> None:
        for text, box in self.texts:
            if text:
                assert box.x0 >= 0 and box.x1 <= charts.WIDTH_PX, f"{text!r} runs off the image"
                assert box.y0 >= 0 and box.y1 <= charts.HEIGHT_PX, f"{text!r} runs off the image"


@pytest.fixture
def drawn() -> Iterator[Drawn]:
    from matplotlib.mathtext import MathTextParser
    from matplotlib.text import Text

    seen = Drawn()
    original_draw, original_parse = Text.draw, MathTextParser.parse

    def draw(self: Text, renderer: Any) -> None:
        seen.texts.append((self.get_text(), self.get_window_extent(renderer)))
        original_draw(self, renderer)

    def parse(self: MathTextParser, text: str, *args: Any, **kwargs: Any) -> Any:
        seen.formulas.append(text)
        return original_parse(self, text, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Text, "draw", draw)
        patch.setattr(MathTextParser, "parse", parse)
        yield seen


@pytest.mark.parametrize(("render", "data"), REAL + EDGES, ids=ids(REAL + EDGES))
def test_renders_a_png_of_the_agreed_size(render: Renderer, data: Any, drawn: Drawn) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing glyph or a layout complaint would show on the phone
        image = open_png(render(data))
    colours = image.getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 50  # drawn, not a blank page
    assert chart_texts.NO_DATA not in drawn.strings()
    assert drawn.formulas == []
    drawn.assert_inside_image()


@pytest.mark.parametrize(("render", "data"), EMPTY, ids=ids(EMPTY))
def test_empty_data_says_so_in_the_image(render: Renderer, data: Any, drawn: Drawn) -> None:
    open_png(render(data))
    assert chart_texts.NO_DATA in drawn.strings()


def hostile_cases() -> list[tuple[Renderer, Any]]:
    period = ChartPeriod(date(2025, 3, 1), date(2025, 3, 7), HOSTILE)
    journey = ClientJourney(
        5,
        HOSTILE,
        (
            JourneyEvent(at("2025-03-01T10:00:00+03:00"), "message_received"),
            JourneyEvent(at("2025-03-01T10:30:00+03:00"), "refusal", HOSTILE),
            JourneyEvent(at("2025-03-01T11:00:00+03:00"), "$custom.event$"),
        ),
    )
    return [
        (charts.render_funnel, FunnelData(period, 10, 5, 3, 2, 2, 1)),
        (charts.render_daily_trend, DailyTrend(period, (DayCounts(period.first_day, 4, 2, 1, 2),))),
        (charts.render_latency, LatencyDistribution.from_seconds(period, [1.0, 4.0])),
        (charts.render_heatmap, WeekHourHeatmap(period, grid({(0, 1): 1}), grid({}))),
        (charts.render_client_journey, journey),
        (charts.render_funnel, FunnelData(period, 0, 0, 0, 0, 0, 0)),
        (charts.render_client_journey, ClientJourney(5, HOSTILE, ())),
    ]


@pytest.mark.parametrize(("render", "data"), hostile_cases(), ids=ids(hostile_cases()))
def test_user_strings_are_plain_text(render: Renderer, data: Any, drawn: Drawn) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        open_png(render(data))
    assert drawn.formulas == [], "mathtext parsed a user string"
    shortened = [text for text in drawn.strings() if "$x^2$ </b>" in text]
    assert shortened and all(text.endswith("…") for text in shortened)
    assert not any(char in text for text in drawn.strings() for char in "\u202e\u200f\u2067")
    drawn.assert_inside_image()


def test_plain_text_strips_invisible_characters_and_shortens() -> None:
    assert charts.plain_text("a\u200fb\nc\td\x00e", 40) == "ab c d e"
    assert charts.plain_text("абвгд", 4) == "абв…"
    assert charts.plain_text("$x$") == "$x$"


def test_plain_text_leaves_out_what_the_font_cannot_draw() -> None:
    # An emoji would be an empty box; ♀ alone is drawable, but here it is part of the emoji.
    assert charts.plain_text("Анна 💇\u200d♀\ufe0f O'Neil 🙂") == "Анна O'Neil"
    assert charts.plain_text("♀ и ♂") == "♀ и ♂"


async def test_renderers_share_no_state_across_threads() -> None:
    expected = [render(data) for render, data in REAL]
    for _ in range(2):
        together = await asyncio.gather(*(asyncio.to_thread(render, data) for render, data in REAL * 2))
        assert together == expected * 2


def test_importing_reports_does_not_load_matplotlib() -> None:
    code = "import sys, reports.charts, storage.chart_queries; sys.exit('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_latency_percentiles_interpolate_like_numpy() -> None:
    data = LatencyDistribution.from_seconds(PERIOD, [4.0, 0.8, 1.2, 1.2])
    assert data.seconds == (0.8, 1.2, 1.2, 4.0)
    assert data.percentile(0.5) == pytest.approx(1.2)
    assert data.percentile(0.95) == pytest.approx(1.2 + 0.85 * 2.8)
    assert data.percentile(0) == 0.8 and data.percentile(1) == 4.0
    assert data.over_sla_share == 0.25
    empty = LatencyDistribution(PERIOD, ())
    assert empty.percentile(0.5) is None and empty.over_sla_share is None


def test_period_is_the_local_days_of_half_open_utc_bounds() -> None:
    start = datetime(2025, 2, 28, 21, tzinfo=UTC)
    period = ChartPeriod.from_utc(start, start + timedelta(days=2), MOSCOW)
    assert (period.first_day, period.last_day) == (date(2025, 3, 1), date(2025, 3, 2))
    with pytest.raises(ValueError):
        ChartPeriod.from_utc(datetime(2025, 3, 1), datetime(2025, 3, 2), MOSCOW)
    with pytest.raises(ValueError):
        WeekHourHeatmap(PERIOD, ((0,) * 24,) * 6, grid({}))


def test_offset_spans_find_the_dst_switch_to_the_second() -> None:
    moscow_start = datetime(2025, 1, 1, tzinfo=UTC)
    assert offset_spans(moscow_start, moscow_start + timedelta(days=90), MOSCOW) == [
        (moscow_start, timedelta(hours=3))
    ]
    start, end = datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 11, 1, tzinfo=UTC)
    assert offset_spans(start, end, BERLIN) == [
        (start, timedelta(hours=1)),
        (datetime(2025, 3, 30, 1, tzinfo=UTC), timedelta(hours=2)),
        (datetime(2025, 10, 26, 1, tzinfo=UTC), timedelta(hours=1)),
    ]


# --- queries, on both backends ---------------------------------------------------------------------


def event(user: str, local: str, kind: str = "message_received", **fields: Any) -> dict[str, Any]:
    return {"timestamp": local, "event": kind, "user_id": user, "location": "center", **fields}


FIXTURE = [
    # Local midnight of the first day is 21:00 UTC of the day before.
    event("tg_1", "2025-03-01T00:00:00+03:00"),
    event("tg_1", "2025-03-01T00:30:00+03:00", "lead_created"),
    event("tg_1", "2025-03-01T10:00:00+03:00", "appointment_booked"),
    event("tg_1", "2025-03-02T12:00:00+03:00", "payment_status", status="paid", amount=1500),
    event("tg_2", "2025-03-01T23:59:59+03:00"),
    # 02:00 local on Sunday is still Saturday in UTC.
    event("tg_2", "2025-03-02T02:00:00+03:00"),
    event("tg_2", "2025-03-02T02:10:00+03:00", "lead_created"),
    event("tg_2", "2025-03-02T03:00:00+03:00", "appointment_booked"),
    event("tg_2", "2025-03-02T20:00:00+03:00", "no_show"),
    # A lead on a day its client did not write: counted as a lead, not as that day's conversion.
    event("tg_3", "2025-03-01T12:00:00+03:00", "lead_created"),
    event("tg_3", "2025-03-02T21:00:00+03:00"),
    event("tg_3", "2025-03-02T21:05:00+03:00", "refusal", reason="нет свободных вечерних слотов"),
    event("tg_3", "2025-03-02T21:20:00+03:00"),
    event("tg_3", "2025-03-02T21:30:00+03:00", "refusal", intent="price.too_high"),
    event("tg_6", "2025-03-02T10:00:00+03:00", location="south"),
    event("tg_5", "2025-03-02T11:00:00+03:00", "payment_status", status="pending", amount=900),
    event("tg_1", "2025-03-01T00:00:01+03:00", "assistant_response", response_time_ms=800),
    event("tg_2", "2025-03-02T02:00:01+03:00", "assistant_response", response_time_ms=1200),
    event("tg_3", "2025-03-02T21:00:01+03:00", "assistant_response", response_time_ms=1200),
    event("tg_3", "2025-03-02T21:20:04+03:00", "assistant_response", response_time_ms=4000),
    event("tg_6", "2025-03-02T10:00:05+03:00", "assistant_response"),
    # Just outside the period on both sides.
    event("tg_4", "2025-02-28T23:59:59+03:00"),
    event("tg_4", "2025-02-28T23:59:59+03:00", "assistant_response", response_time_ms=9000),
    event("tg_4", "2025-03-03T00:00:00+03:00"),
    event("tg_4", "2025-03-03T00:00:00+03:00", "refusal", reason="дорого"),
]
START = datetime(2025, 2, 28, 21, tzinfo=UTC)
END = datetime(2025, 3, 2, 21, tzinfo=UTC)
SATURDAY, SUNDAY = 5, 6


async def store(writer: EventWriter, items: list[dict[str, Any]], zone: ZoneInfo = MOSCOW) -> None:
    validated = validate_items(items, zone)
    assert validated.errors == []
    await writer.write(validated.rows)


@pytest.fixture
async def filled(db: Database, writer: EventWriter) -> Database:
    await store(writer, FIXTURE)
    await store(writer, FIXTURE[:5])  # duplicates count once
    return db


async def test_the_report_counts_the_funnel_steps_per_location(filled: Database) -> None:
    period = Period(date(2025, 3, 1), date(2025, 3, 2))

    async def funnel(location: str | None = None) -> tuple[int, int, int, int, int]:
        report = (await build_report(filled.sessions, ReportScope(period, MOSCOW, 3.0, location))).report
        return report.clients, report.leads, report.bookings, report.payments_paid, report.no_shows

    assert await funnel() == (4, 3, 2, 1, 1)
    assert (await funnel("center"))[:2] == (3, 3)
    assert (await funnel("south"))[:3] == (1, 0, 0)
    assert await funnel("$nowhere$") == (0, 0, 0, 0, 0)


async def test_daily_trend_groups_by_local_day(filled: Database) -> None:
    async with filled.sessions() as session:
        trend = await daily_counts(session, START, END, MOSCOW)
        longer = await daily_counts(session, START - timedelta(days=1), END, MOSCOW)
    assert trend == (
        DayCounts(date(2025, 3, 1), clients=2, leads=2, bookings=1, clients_with_lead=1),
        DayCounts(date(2025, 3, 2), clients=3, leads=1, bookings=1, clients_with_lead=1),
    )
    assert [d.conversion for d in trend] == [0.5, pytest.approx(1 / 3)]
    assert longer[0] == DayCounts(date(2025, 2, 28), 1, 0, 0, 0)
    assert longer[1:] == trend


async def test_heatmap_puts_events_in_local_weekday_and_hour(filled: Database) -> None:
    async with filled.sessions() as session:
        heat = await week_hour_counts(session, START, END, MOSCOW)
    assert heat.demand == grid(
        {(SATURDAY, 0): 1, (SATURDAY, 23): 1, (SUNDAY, 2): 1, (SUNDAY, 10): 1, (SUNDAY, 21): 2}
    )
    assert heat.refusals == grid({(SUNDAY, 21): 2})


async def test_journey_lists_a_clients_events_in_local_time(filled: Database) -> None:
    async with filled.sessions() as session:
        [client_id] = await find_client_ids(session, "tg_3")
        journey = await client_journey(session, client_id, MOSCOW)
        nobody = await client_journey(session, 10**9, MOSCOW)
    assert [(e.at.isoformat(), e.event, e.detail) for e in journey.events] == [
        ("2025-03-01T12:00:00+03:00", "lead_created", None),
        ("2025-03-02T21:00:00+03:00", "message_received", None),
        ("2025-03-02T21:00:01+03:00", "assistant_response", None),
        ("2025-03-02T21:05:00+03:00", "refusal", "нет свободных вечерних слотов"),
        ("2025-03-02T21:20:00+03:00", "message_received", None),
        ("2025-03-02T21:20:04+03:00", "assistant_response", None),
        ("2025-03-02T21:30:00+03:00", "refusal", "price.too_high"),
    ]
    assert journey.client_id == client_id and nobody.is_empty
    open_png(charts.render_client_journey(journey))


async def test_local_grouping_follows_dst_and_half_hour_zones(db: Database, writer: EventWriter) -> None:
    await store(
        writer,
        [
            event("tg_1", "2025-03-30T01:30:00+01:00"),  # Berlin before the switch: 00:30 UTC
            event("tg_2", "2025-03-30T03:30:00+02:00"),  # after it: 01:30 UTC
            event("tg_3", "2025-03-01T18:45:00+00:00"),  # Kolkata: 00:15 on 2 March
        ],
    )
    async with db.sessions() as session:
        berlin_start = datetime(2025, 3, 29, 23, tzinfo=UTC)
        berlin = await week_hour_counts(session, berlin_start, berlin_start + timedelta(hours=23), BERLIN)
        kolkata_start = datetime(2025, 2, 28, 18, 30, tzinfo=UTC)
        kolkata = await daily_counts(session, kolkata_start, kolkata_start + timedelta(days=2), KOLKATA)
        kolkata_heat = await week_hour_counts(
            session, kolkata_start, kolkata_start + timedelta(days=2), KOLKATA
        )
    assert berlin.demand == grid({(SUNDAY, 1): 1, (SUNDAY, 3): 1})
    assert [(d.day, d.clients) for d in kolkata] == [(date(2025, 3, 1), 0), (date(2025, 3, 2), 1)]
    assert kolkata_heat.demand == grid({(SUNDAY, 0): 1})


async def test_the_report_album_renders_from_stored_events(filled: Database) -> None:
    scope = ReportScope(Period(date(2025, 3, 1), date(2025, 3, 2)), MOSCOW, 3.0)
    album = (await build_report(filled.sessions, scope, with_charts=True)).charts
    assert [chart.filename for chart in album] == [
        "funnel.png",
        "trend.png",
        "answer-times.png",
        "heatmap.png",
    ]
    for chart in album:
        open_png(chart.content)
