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
from typing import TypeVar
from zoneinfo import ZoneInfo

from bot.drawing import drawn
from bot.settings import Settings
from reports import charts
from reports.chart_data import ChartPeriod, DailyTrend, FunnelData, LatencyDistribution, WeekHourHeatmap
from reports.metrics import Report, load_report
from reports.periods import Period
from reports.report_text import render_report_text
from storage.chart_queries import daily_trend_data, heatmap_data
from storage.database import Database
from storage.outbox import Attachment
from storage.reads import read_alone

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


def funnel_of(report: Report, start: datetime, end: datetime, zone: ZoneInfo) -> FunnelData:
    """The funnel chart's numbers, taken from the report: clients, leads, bookings, paid, no-shows."""
    period = ChartPeriod.from_utc(start, end, zone, report.location)
    return FunnelData(
        period, report.clients, report.leads, report.bookings, report.payments_paid, report.no_shows
    )


@dataclass(frozen=True, slots=True)
class _Loading:
    """The report and each chart's data, being read side by side."""

    report: asyncio.Task[Report]
    funnel: Awaitable[FunnelData]
    trend: Awaitable[DailyTrend]
    latency: Awaitable[LatencyDistribution]
    heatmap: Awaitable[WeekHourHeatmap]


def _start_loading(db: Database, settings: Settings, period: Period, location: str | None) -> _Loading:
    zone, sla = settings.tz, settings.reports.sla_seconds
    start, end = period.utc_bounds(zone)
    report = asyncio.ensure_future(load_report(db.sessions, period, zone, sla_seconds=sla, location=location))

    async def funnel() -> FunnelData:
        return funnel_of(await report, start, end, zone)

    async def latency() -> LatencyDistribution:
        # The report's own answer times, derived ones included, so the chart shows what p50/p95 count.
        chart_period = ChartPeriod.from_utc(start, end, zone, location)
        return LatencyDistribution.from_seconds(chart_period, (await report).answer_seconds, sla)

    return _Loading(
        report=report,
        funnel=funnel(),
        trend=read_alone(db.sessions, lambda s: daily_trend_data(s, start, end, zone, location)),
        latency=latency(),
        heatmap=read_alone(db.sessions, lambda s: heatmap_data(s, start, end, zone, location)),
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
