"""The plain values storage's read queries hand to ``reports``: dataclasses only, importable without
SQLAlchemy, so the metrics, the alert rules and the charts stay pure functions of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from storage.followup_items import HandledFollowups

WEEKDAYS = 7
HOURS = 24

# A grid of counts: WEEKDAYS rows (Monday first) of HOURS columns (local hour 0..23).
WeekHourGrid = tuple[tuple[int, ...], ...]


@dataclass(frozen=True, slots=True)
class Breakdown:
    """One channel's or location's share: clients who wrote, leads and bookings."""

    clients: int
    leads: int
    bookings: int


@dataclass(frozen=True, slots=True)
class Funnel:
    """Clients (people, after identity linking) at each step of the period, and the same per channel and
    per location; with the counts of the events it read (messages, leads, bookings), which need no pass
    of their own."""

    clients: int
    clients_with_lead: int
    clients_with_message_and_lead: int
    clients_with_lead_and_booking: int
    by_channel: dict[str, Breakdown]
    by_location: dict[str | None, Breakdown]
    messages: int = 0
    leads: int = 0
    bookings: int = 0


@dataclass(frozen=True, slots=True)
class ModelUsage:
    """The calls of one model whose costs are in one currency (None: a cost the source gave without one,
    or no cost at all): how many, their tokens, how many carry a cost and what those cost together."""

    model: str
    currency: str | None
    calls: int
    input_tokens: int
    output_tokens: int
    priced_calls: int
    cost: float


@dataclass(frozen=True, slots=True)
class PeriodAggregates:
    """Everything the metrics of one period are computed from; ``by_location`` keys None = no location."""

    event_counts: dict[str, int]
    funnel: Funnel
    payments_paid: int
    revenue: float
    intents: dict[str, int]
    refusal_reasons: dict[str, int]
    response_seconds: list[float]
    first_message_to_booking_seconds: list[float]
    repeat_bookings: int
    model_usage: tuple[ModelUsage, ...] = ()
    followup: HandledFollowups = field(default_factory=HandledFollowups)


@dataclass(frozen=True, slots=True)
class DayCounts:
    """One local day: who wrote, what they produced, and how many writers also left a lead that day."""

    day: date
    clients: int
    leads: int
    bookings: int
    clients_with_lead: int

    @property
    def conversion(self) -> float | None:
        """Dialog → lead conversion of the day; None when nobody wrote (a gap, not a zero)."""
        return self.clients_with_lead / self.clients if self.clients else None


@dataclass(frozen=True, slots=True)
class WeekHourCounts:
    """Client messages (demand) and refusals by local weekday × hour, summed over a period."""

    demand: WeekHourGrid
    refusals: WeekHourGrid


def empty_grid() -> list[list[int]]:
    return [[0] * HOURS for _ in range(WEEKDAYS)]


def freeze_grid(grid: list[list[int]]) -> WeekHourGrid:
    return tuple(tuple(row) for row in grid)


@dataclass(frozen=True, slots=True)
class JourneyEvent:
    """One event of a client's history: local time, event type, and a short detail such as a reason."""

    at: datetime
    event: str
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class ClientJourney:
    client_id: int
    name: str | None
    events: tuple[JourneyEvent, ...]

    @property
    def is_empty(self) -> bool:
        return not self.events
