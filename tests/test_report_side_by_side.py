"""The report read side by side (each query group and period on its own connection) gives exactly what
one session gives, and the funnel chart drawn from the report's numbers equals the funnel's own query,
on SQLite and PostgreSQL. The fixture is the metrics tests' hand-computed one."""

from __future__ import annotations

import pytest

from bot.report_render import load_report_data, render_report
from bot.settings import Settings
from reports.metrics import load_report
from reports.report_text import render_report_text
from storage.chart_queries import funnel_data
from storage.database import Database
from storage.writer import EventWriter
from tests.test_metrics import EXPECTED, EXPECTED_PREVIOUS, FIXTURE, MOSCOW, PERIOD, rows

SETTINGS = Settings(timezone="Europe/Moscow", reports={"sla_seconds": 3})


@pytest.mark.parametrize("location", [None, "Ямашева"])
async def test_side_by_side_equals_one_session(
    db: Database, writer: EventWriter, location: str | None
) -> None:
    await writer.write(rows(FIXTURE))
    together = (await load_report(db.sessions, PERIOD, MOSCOW, sla_seconds=3, location=location)).as_json()
    async with db.sessions() as session:
        alone = (await load_report(session, PERIOD, MOSCOW, sla_seconds=3, location=location)).as_json()
    assert together == alone
    if location is None:
        previous = together.pop("previous")
        assert together == EXPECTED
        assert previous == EXPECTED_PREVIOUS


@pytest.mark.parametrize("location", [None, "Баумана"])
async def test_funnel_chart_is_the_report_funnel(
    db: Database, writer: EventWriter, location: str | None
) -> None:
    await writer.write(rows(FIXTURE))
    report, data = await load_report_data(db, SETTINGS, PERIOD, location)
    start, end = PERIOD.utc_bounds(MOSCOW)
    async with db.sessions() as session:
        queried = await funnel_data(session, start, end, MOSCOW, location)
    assert data.funnel == queried
    assert (data.funnel.clients, data.funnel.bookings) == (report.clients, report.bookings)


async def test_rendered_report_has_every_chart_in_album_order(db: Database, writer: EventWriter) -> None:
    await writer.write(rows(FIXTURE))
    rendered = await render_report(db, SETTINGS, PERIOD)
    assert [attachment.filename for attachment in rendered.attachments] == [
        "funnel.png",
        "trend.png",
        "answer-times.png",
        "heatmap.png",
    ]
    assert all(attachment.content.startswith(b"\x89PNG\r\n\x1a\n") for attachment in rendered.attachments)
    report = await load_report(db.sessions, PERIOD, MOSCOW, sla_seconds=3)
    assert rendered.text == render_report_text(report, sla_seconds=3)


async def test_answer_time_chart_counts_derived_answer_times_like_the_report(
    db: Database, writer: EventWriter
) -> None:
    """Of the fixture's four answers one carries response_time_ms, two are derived from the client's
    latest message, and one has no message before it (not counted), as in the report's p50/p95."""
    await writer.write(rows(FIXTURE))
    report, data = await load_report_data(db, SETTINGS, PERIOD)
    assert report.ai_responses == 4
    assert data.latency.seconds == (1.2, 2.5, 32401.0)
    assert data.latency.percentile(0.5) == report.ai_response_seconds.p50 == 2.5
    assert data.latency.over_sla_share == pytest.approx(report.ai_response_seconds.over_sla_share)
