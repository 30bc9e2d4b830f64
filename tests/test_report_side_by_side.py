"""The report read side by side (each query group and period on its own connection) gives exactly what
one session gives, and the report built with its album has the same numbers and text as without, on
SQLite and PostgreSQL. The fixture is the metrics tests' hand-computed one."""

from __future__ import annotations

import pytest

from reports.owner_report import ReportScope, build_report
from storage.database import Database
from storage.writer import EventWriter
from tests.test_metrics import EXPECTED, EXPECTED_PREVIOUS, FIXTURE, MOSCOW, PERIOD, rows

SCOPE = ReportScope(PERIOD, MOSCOW, 3.0)


@pytest.mark.parametrize("location", [None, "Ямашева"])
async def test_side_by_side_equals_one_session(
    db: Database, writer: EventWriter, location: str | None
) -> None:
    await writer.write(rows(FIXTURE))
    scope = ReportScope(PERIOD, MOSCOW, 3.0, location)
    together = (await build_report(db.sessions, scope)).report.as_json()
    async with db.sessions() as session:
        alone = (await build_report(session, scope)).report.as_json()
    assert together == alone
    if location is None:
        previous = together.pop("previous")
        assert together == EXPECTED
        assert previous == EXPECTED_PREVIOUS


@pytest.mark.parametrize("location", [None, "Баумана"])
async def test_the_album_comes_with_the_same_numbers_and_text(
    db: Database, writer: EventWriter, location: str | None
) -> None:
    await writer.write(rows(FIXTURE))
    scope = ReportScope(PERIOD, MOSCOW, 3.0, location)
    with_album = await build_report(db.sessions, scope, with_charts=True)
    numbers_only = await build_report(db.sessions, scope)
    assert [chart.filename for chart in with_album.charts] == [
        "funnel.png",
        "trend.png",
        "answer-times.png",
        "heatmap.png",
    ]
    assert all(chart.content.startswith(b"\x89PNG\r\n\x1a\n") for chart in with_album.charts)
    assert numbers_only.charts == ()
    assert with_album.report.as_json() == numbers_only.report.as_json()
    assert (with_album.text, with_album.subject) == (numbers_only.text, numbers_only.subject)


async def test_a_session_cannot_read_the_album_side_by_side(db: Database) -> None:
    async with db.sessions() as session:
        with pytest.raises(TypeError, match="session factory"):
            await build_report(session, SCOPE, with_charts=True)


async def test_answer_times_behind_the_chart_are_the_reports_own(db: Database, writer: EventWriter) -> None:
    """Of the fixture's four answers one carries response_time_ms, two are derived from the client's
    latest message, and one has no message before it (not counted), as in the report's p50/p95."""
    await writer.write(rows(FIXTURE))
    report = (await build_report(db.sessions, SCOPE)).report
    assert report.ai_responses == 4
    assert report.answer_seconds == (1.2, 2.5, 32401.0)
    assert report.ai_response_seconds.p50 == 2.5
