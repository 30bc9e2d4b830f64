"""What each chart shows, as plain immutable values.

Kept apart from the renderers so that the queries, the bot and the tests build and compare chart data
without importing matplotlib, and so a value can be handed to a worker thread without sharing state.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, tzinfo

from reports.metrics import Report
from reports.quantiles import percentile
from storage.aggregates import HOURS, WEEKDAYS, DayCounts, WeekHourGrid
from storage.local_time import local_days


@dataclass(frozen=True, slots=True)
class ChartPeriod:
    """The whole local days a chart covers, and the location it is limited to, for its caption."""

    first_day: date
    last_day: date
    location: str | None = None

    @classmethod
    def from_utc(
        cls, start_utc: datetime, end_utc: datetime, zone: tzinfo, location: str | None = None
    ) -> ChartPeriod:
        """The local days of ``[start_utc, end_utc)``; the end is exclusive, as in every report."""
        days = local_days(start_utc, end_utc, zone)
        return cls(days[0], days[-1], location)


@dataclass(frozen=True, slots=True)
class FunnelData:
    """The report's volumes in funnel order; the same definitions as the metrics, so the numbers agree."""

    period: ChartPeriod
    clients: int
    leads: int
    bookings: int
    visits: int
    paid: int
    no_shows: int

    @classmethod
    def from_report(cls, period: ChartPeriod, report: Report) -> FunnelData:
        return cls(
            period,
            report.clients,
            report.leads,
            report.bookings,
            report.visits,
            report.payments_paid,
            report.no_shows,
        )

    @property
    def is_empty(self) -> bool:
        return not any((self.clients, self.leads, self.bookings, self.visits, self.paid, self.no_shows))


@dataclass(frozen=True, slots=True)
class DailyTrend:
    period: ChartPeriod
    days: tuple[DayCounts, ...]

    @property
    def is_empty(self) -> bool:
        return not any(d.clients or d.leads or d.bookings for d in self.days)


@dataclass(frozen=True, slots=True)
class LatencyDistribution:
    """Every AI answer time of the period in seconds, ascending, and the SLA they are held to.

    Plain floats in one tuple, not (value, count) pairs: a month of answers is 100k values, and pairs
    would be as many objects for the garbage collector to walk while the report is drawn.
    """

    period: ChartPeriod
    seconds: tuple[float, ...]
    sla_seconds: float = 3.0

    @classmethod
    def from_seconds(
        cls, period: ChartPeriod, seconds: Iterable[float], sla_seconds: float = 3.0
    ) -> LatencyDistribution:
        return cls(period, tuple(sorted(map(float, seconds))), sla_seconds)

    @property
    def total(self) -> int:
        return len(self.seconds)

    @property
    def is_empty(self) -> bool:
        return not self.seconds

    def count_at_most(self, seconds: float) -> int:
        """How many answers took ``seconds`` or less."""
        return bisect_right(self.seconds, seconds)

    def percentile(self, share: float) -> float | None:
        """The ``share`` (0..1) quantile, as the report computes it; None without samples."""
        if not 0 <= share <= 1:
            raise ValueError("share must be within 0..1")
        return percentile(self.seconds, share * 100)

    @property
    def over_sla_share(self) -> float | None:
        total = self.total
        if total == 0:
            return None
        return (total - self.count_at_most(self.sla_seconds)) / total


@dataclass(frozen=True, slots=True)
class WeekHourHeatmap:
    """Demand (client messages) and refusals by local weekday × hour, summed over the period."""

    period: ChartPeriod
    demand: WeekHourGrid
    refusals: WeekHourGrid

    def __post_init__(self) -> None:
        for grid in (self.demand, self.refusals):
            if len(grid) != WEEKDAYS or any(len(row) != HOURS for row in grid):
                raise ValueError(f"a week-hour grid must be {WEEKDAYS}×{HOURS}")

    @property
    def is_empty(self) -> bool:
        return not any(any(row) for row in (*self.demand, *self.refusals))
