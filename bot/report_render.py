"""A whole owner's report: the summary text and the album of charts, as the bot, the scheduler, e-mail
and the demo all show it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bot.settings import Settings
from reports import charts
from reports.chart_data import DailyTrend, FunnelData, LatencyDistribution, WeekHourHeatmap
from reports.metrics import Report, load_report
from reports.periods import Period
from reports.report_text import render_report_text
from storage.chart_queries import daily_trend_data, funnel_data, heatmap_data, latency_data
from storage.database import Database
from storage.outbox import Attachment


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
        return (
            Attachment("funnel.png", charts.render_funnel(self.funnel)),
            Attachment("trend.png", charts.render_daily_trend(self.trend)),
            Attachment("answer-times.png", charts.render_latency(self.latency)),
            Attachment("heatmap.png", charts.render_heatmap(self.heatmap)),
        )


async def load_report_data(
    db: Database, settings: Settings, period: Period, location: str | None = None
) -> tuple[Report, ReportCharts]:
    zone = settings.tz
    start, end = period.utc_bounds(zone)
    async with db.sessions() as session:
        report = await load_report(
            session, period, zone, sla_seconds=settings.reports.sla_seconds, location=location
        )
        data = ReportCharts(
            funnel=await funnel_data(session, start, end, zone, location),
            trend=await daily_trend_data(session, start, end, zone, location),
            latency=await latency_data(
                session, start, end, zone, location, sla_seconds=settings.reports.sla_seconds
            ),
            heatmap=await heatmap_data(session, start, end, zone, location),
        )
    return report, data


def report_subject(period: Period) -> str:
    if period.days == 1:
        return f"LeadTrail: отчёт за {period.start_local:%d.%m.%Y}"
    return f"LeadTrail: отчёт за {period.start_local:%d.%m.%Y}–{period.end_local:%d.%m.%Y}"


async def render_report(
    db: Database, settings: Settings, period: Period, location: str | None = None
) -> RenderedReport:
    report, data = await load_report_data(db, settings, period, location)
    text = render_report_text(report, sla_seconds=settings.reports.sla_seconds)
    attachments = await asyncio.to_thread(data.render)
    return RenderedReport(text, report_subject(period), attachments)
