"""What the alert rules (``reports.alerts``) read at a moment: the windows they compare and the numbers
``storage.alert_queries`` gathers for them, as plain values importable without SQLAlchemy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from storage.aggregates import ModelUsage

# The windows each rule compares; storage.alert_queries gathers exactly these, reports.alerts judges them.
CONVERSION_HISTORY_DAYS = 14
NO_SHOW_RECENT_DAYS = 7
NO_SHOW_HISTORY_DAYS = 28
ANSWER_WINDOW = timedelta(hours=1)
SILENCE_HISTORY_DAYS = 14
# source_silent's scope for all channels together, where a whole assistant down shows first (a real
# channel is never "", events require one).
ALL_CHANNELS = ""
INGEST_WINDOW = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Proportion:
    """``hits`` out of ``total``: clients with a lead out of clients who wrote, no-shows out of bookings."""

    hits: int
    total: int

    @property
    def rate(self) -> float | None:
        return self.hits / self.total if self.total else None


@dataclass(frozen=True, slots=True)
class RateComparison:
    """A recent window against the history before it; ``since`` is where the recent window starts."""

    recent: Proportion
    baseline: Proportion
    since: datetime


@dataclass(frozen=True, slots=True)
class AnswerTimes:
    """Seconds per AI answer of the last hour (the report's definition), from ``since`` on."""

    seconds: tuple[float, ...]
    since: datetime


@dataclass(frozen=True, slots=True)
class ChannelTraffic:
    """A channel's (or, as ``ALL_CHANNELS``, all channels') last event, and the clients it had in the same
    local hours as its current quiet stretch on each of the days before the quiet began, newest first.

    The stretch runs from the last event (or from ``silence_hours`` ago when the channel spoke since) to
    now, at most a day.
    """

    channel: str
    last_event_at: datetime
    clients_per_day: tuple[int, ...]

    @property
    def active_days(self) -> int:
        return sum(1 for clients in self.clients_per_day if clients)

    @property
    def usual_clients(self) -> float:
        return sum(self.clients_per_day) / len(self.clients_per_day) if self.clients_per_day else 0.0


@dataclass(frozen=True, slots=True)
class Rejections:
    """Payloads quarantined since ``since``; the latest one's source and reason hint at the cause."""

    count: int
    since: datetime
    first_at: datetime | None = None
    latest_source: str | None = None
    latest_reason: str | None = None


@dataclass(frozen=True, slots=True)
class MonthUsage:
    """The model calls of the local month so far: ``start`` and ``end`` bound the whole month."""

    start: datetime
    end: datetime
    usage: tuple[ModelUsage, ...]


@dataclass(frozen=True)
class AlertInputs:
    """Everything the rules need at ``now``; ``zone`` is where times in the texts are shown."""

    now: datetime
    zone: tzinfo
    conversion: RateComparison
    no_shows: RateComparison
    answers: AnswerTimes
    channels: tuple[ChannelTraffic, ...]
    rejections: Rejections
    model_calls: MonthUsage
