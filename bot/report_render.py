"""A whole owner's report: the summary text and the album of charts, as the bot, the scheduler, e-mail
and the demo all show it.

Everything runs side by side: the two periods and each chart's query on their own connections
(``storage.reads``), and each chart is drawn (in the one drawing thread, ``bot.drawing``) as soon as its
data is in, while the rest is still being read. The funnel and answer-time charts are drawn from the
report's own numbers (the same definitions), so they cost no query and always agree with the text.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from bot.drawing import drawn
from bot.settings import Settings
from reports import charts
from reports.chart_data import ChartPeriod, DailyTrend, FunnelData, LatencyDistribution, WeekHourHeatmap
from reports.metrics import Report, compute_period, compute_report
from reports.periods import Period
from reports.report_text import render_report_text
from storage.chart_queries import daily_trend_data, heatmap_data
from storage.database import Database
from storage.outbox import Attachment
from storage.reads import read_alone
from storage.report_queries import PeriodAggregates, load_period_aggregates

T = TypeVar("T")
CHART_FILES = ("funnel.png", "trend.png", "answer-times.png", "heatmap.png")


@dataclass(frozen=True, slots=True)
class RenderedReport:
    """What the owner receives: the HTML text and the charts in album order."""

    text: str
    subject: str
    attachments: tuple[Attachment, ...]


@dataclass(frozen=True, slots=True)
class ReportCharts:
    funnel: FunnelData
    trend: DailyTrend
    latency: LatencyDistribution
    heatmap: WeekHourHeatmap

    def render(self) -> tuple[Attachment, ...]:
        """CPU-bound matplotlib work: call it in a worker thread."""
        pngs = (
            charts.render_funnel(self.funnel),
            charts.render_daily_trend(self.trend),
            charts.render_latency(self.latency),
            charts.render_heatmap(self.heatmap),
        )
        return tuple(Attachment(name, png) for name, png in zip(CHART_FILES, pngs, strict=True))


@dataclass(frozen=True, slots=True)
class _Loading:
    """The report and each chart's data, being read side by side."""

    report: asyncio.Task[Report]
    funnel: Awaitable[FunnelData]
    trend: Awaitable[DailyTrend]
    latency: Awaitable[LatencyDistribution]
    heatmap: Awaitable[WeekHourHeatmap]


async def _after(earlier: asyncio.Future[Any], read: Awaitable[T]) -> T:
    """``read`` once ``earlier`` is over, however it ended: the two take turns on one core."""
    await asyncio.wait([earlier])
    return await read


def _start_loading(db: Database, settings: Settings, period: Period, location: str | None) -> _Loading:
    """Two lanes, as many as cores (storage.reads: more readers cost more than they give): the heat map,
    then the current period; the trend, then the previous period. The two charts that need no report
    numbers are drawn while the numbers are read, and the funnel and answer-time charts need only the
    current period's, so the drawing thread is busy from the start and done soon after the last read."""
    zone, sla = settings.tz, settings.reports.sla_seconds
    start, end = period.utc_bounds(zone)
    chart_period = ChartPeriod.from_utc(start, end, zone, location)

    def aggregates(bounds: tuple[datetime, datetime]) -> Awaitable[PeriodAggregates]:
        return read_alone(db.sessions, partial(load_period_aggregates, bounds=bounds, location=location))

    heatmap = asyncio.ensure_future(
        read_alone(db.sessions, lambda s: heatmap_data(s, start, end, zone, location))
    )
    current = asyncio.ensure_future(_after(heatmap, aggregates((start, end))))
    trend = asyncio.ensure_future(
        read_alone(db.sessions, lambda s: daily_trend_data(s, start, end, zone, location))
    )
    previous = asyncio.ensure_future(_after(trend, aggregates(period.previous().utc_bounds(zone))))

    async def report() -> Report:
        return compute_report(period, await current, await previous, sla_seconds=sla, location=location)

    async def current_period() -> Report:
        return compute_period(period, await current, sla_seconds=sla, with_locations=False, location=location)

    this_period = asyncio.ensure_future(current_period())

    async def funnel() -> FunnelData:
        now = await this_period
        return FunnelData(chart_period, now.clients, now.leads, now.bookings, now.payments_paid, now.no_shows)

    async def latency() -> LatencyDistribution:
        # The report's own answer times, derived ones included, so the chart shows what p50/p95 count.
        return LatencyDistribution.from_seconds(chart_period, (await this_period).answer_seconds, sla)

    return _Loading(
        report=asyncio.ensure_future(report()),
        funnel=funnel(),
        trend=trend,
        latency=latency(),
        heatmap=heatmap,
    )


async def _finish(loading: _Loading, charts_loaded: asyncio.Future[T]) -> tuple[Report, T]:
    """Waits for the charts and the report; after a failure nothing is left reading or drawing."""
    try:
        drawn = await charts_loaded
        return await loading.report, drawn
    finally:
        charts_loaded.cancel()
        loading.report.cancel()


async def load_report_data(
    db: Database, settings: Settings, period: Period, location: str | None = None
) -> tuple[Report, ReportCharts]:
    loading = _start_loading(db, settings, period, location)
    report, (funnel, trend, latency, heatmap) = await _finish(
        loading, asyncio.gather(loading.funnel, loading.trend, loading.latency, loading.heatmap)
    )
    return report, ReportCharts(funnel, trend, latency, heatmap)


async def _drawn_when_loaded(data: Awaitable[T], draw: Callable[[T], bytes]) -> bytes:
    return await drawn(draw, await data)


def report_subject(period: Period) -> str:
    if period.days == 1:
        return f"LeadTrail: отчёт за {period.start_local:%d.%m.%Y}"
    return f"LeadTrail: отчёт за {period.start_local:%d.%m.%Y}–{period.end_local:%d.%m.%Y}"


async def render_report(
    db: Database, settings: Settings, period: Period, location: str | None = None
) -> RenderedReport:
    loading = _start_loading(db, settings, period, location)
    report, pngs = await _finish(
        loading,
        asyncio.gather(
            _drawn_when_loaded(loading.funnel, charts.render_funnel),
            _drawn_when_loaded(loading.trend, charts.render_daily_trend),
            _drawn_when_loaded(loading.latency, charts.render_latency),
            _drawn_when_loaded(loading.heatmap, charts.render_heatmap),
        ),
    )
    text = render_report_text(report, sla_seconds=settings.reports.sla_seconds)
    attachments = tuple(Attachment(name, png) for name, png in zip(CHART_FILES, pngs, strict=True))
    return RenderedReport(text, report_subject(period), attachments)
