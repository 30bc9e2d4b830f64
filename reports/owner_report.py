"""The owner's report — numbers, text and album — built one way for everyone who shows it: ``/report`` and
its buttons, the morning report (Telegram and e-mail), ``leadtrail report``, ``jobs run`` and the demo.

Each period is read and computed once. With charts, everything runs side by side: the two periods and
each chart's query on their own connections (``storage.reads``), and each chart is drawn in the one
drawing thread (``reports.drawing``) as soon as its data is in, while the rest is still being read. The
funnel and answer-time charts are drawn from the current period's own numbers (the same definitions), so
they cost no query and always agree with the text.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from reports import charts
from reports.chart_data import ChartPeriod, DailyTrend, FunnelData, LatencyDistribution, WeekHourHeatmap
from reports.drawing import drawn
from reports.metrics import Report, ReportScope, compute_period, compute_report
from reports.periods import Period
from reports.texts import report as texts
from storage.aggregates import PeriodAggregates
from storage.chart_queries import daily_counts, week_hour_counts
from storage.outbox import Attachment
from storage.reads import SessionSource, gather_reads, read_alone
from storage.report_queries import load_period_aggregates

T = TypeVar("T")
CHART_FILES = ("funnel.png", "trend.png", "answer-times.png", "heatmap.png")


@dataclass(frozen=True, slots=True)
class OwnerReport:
    """The period's numbers (with the previous period's), the HTML text, the e-mail subject and the
    charts in album order (none unless asked for)."""

    report: Report
    text: str
    subject: str
    charts: tuple[Attachment, ...] = ()


async def build_report(
    source: SessionSource, scope: ReportScope, *, with_charts: bool = False
) -> OwnerReport:
    """The report for ``scope``; charts need a session factory (each read on its own connection).

    Without charts, given a session factory the two periods are read side by side; given a session
    (a caller's transaction), one after the other in it.
    """
    if not with_charts:
        reads = [_aggregates(scope, scope.period), _aggregates(scope, scope.period.previous())]
        current, previous = await gather_reads(source, reads)
        report = compute_report(
            _computed(scope, scope.period, current), _computed(scope, scope.period.previous(), previous)
        )
        return _rendered(scope, report)
    if isinstance(source, AsyncSession):
        raise TypeError("a report with charts reads on connections of its own: pass a session factory")
    report, album = await _with_charts(source, scope)
    return _rendered(scope, report, album)


def _aggregates(scope: ReportScope, period: Period) -> Callable[[AsyncSession], Awaitable[PeriodAggregates]]:
    return partial(load_period_aggregates, bounds=period.utc_bounds(scope.zone), location=scope.location)


def _computed(scope: ReportScope, period: Period, raw: PeriodAggregates) -> Report:
    return compute_period(period, raw, sla_seconds=scope.sla_seconds, location=scope.location)


def _rendered(scope: ReportScope, report: Report, album: tuple[Attachment, ...] = ()) -> OwnerReport:
    return OwnerReport(
        report, texts.summary(report, sla_seconds=scope.sla_seconds), texts.subject(scope.period), album
    )


async def _after(earlier: asyncio.Future[Any], read: Awaitable[T]) -> T:
    """``read`` once ``earlier`` is over, however it ended: the two take turns on one core."""
    await asyncio.wait([earlier])
    return await read


async def _drawn_when_loaded(data: Awaitable[T], draw: Callable[[T], bytes]) -> bytes:
    return await drawn(draw, await data)


async def _with_charts(
    sessions: async_sessionmaker[AsyncSession], scope: ReportScope
) -> tuple[Report, tuple[Attachment, ...]]:
    """Two lanes, as many as cores (storage.reads: more readers cost more than they give): the heat map,
    then the current period; the trend, then the previous period. The two charts that need no report
    numbers are drawn while the numbers are read, and the funnel and answer-time charts need only the
    current period's, so the drawing thread is busy from the start and done soon after the last read."""
    period, zone, location = scope.period, scope.zone, scope.location
    start, end = period.utc_bounds(zone)
    chart_period = ChartPeriod.from_utc(start, end, zone, location)

    heat = asyncio.ensure_future(
        read_alone(sessions, lambda s: week_hour_counts(s, start, end, zone, location))
    )
    current = asyncio.ensure_future(_after(heat, read_alone(sessions, _aggregates(scope, period))))
    days = asyncio.ensure_future(read_alone(sessions, lambda s: daily_counts(s, start, end, zone, location)))
    previous = asyncio.ensure_future(
        _after(days, read_alone(sessions, _aggregates(scope, period.previous())))
    )

    async def this_period() -> Report:
        return _computed(scope, period, await current)

    now = asyncio.ensure_future(this_period())

    async def report() -> Report:
        return compute_report(await now, _computed(scope, period.previous(), await previous))

    async def funnel() -> FunnelData:
        return FunnelData.from_report(chart_period, await now)

    async def latency() -> LatencyDistribution:
        # The report's own answer times, derived ones included, so the chart shows what p50/p95 count.
        return LatencyDistribution.from_seconds(chart_period, (await now).answer_seconds, scope.sla_seconds)

    async def trend() -> DailyTrend:
        return DailyTrend(chart_period, await days)

    async def heatmap() -> WeekHourHeatmap:
        counts = await heat
        return WeekHourHeatmap(chart_period, counts.demand, counts.refusals)

    whole = asyncio.ensure_future(report())
    pictures = asyncio.gather(
        _drawn_when_loaded(funnel(), charts.render_funnel),
        _drawn_when_loaded(trend(), charts.render_daily_trend),
        _drawn_when_loaded(latency(), charts.render_latency),
        _drawn_when_loaded(heatmap(), charts.render_heatmap),
    )
    try:
        pngs = await pictures
        return await whole, tuple(Attachment(name, png) for name, png in zip(CHART_FILES, pngs, strict=True))
    finally:  # after a failure nothing is left reading or drawing
        pictures.cancel()
        whole.cancel()
