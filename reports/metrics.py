"""The report's metrics (design.md, "Report metrics"): pure functions from a period's raw aggregates.

Nothing is rounded here; rounding happens only when a number is shown. A ratio whose denominator is zero
is None (JSON null, shown as "—"), never 0, so "no data" never reads as "nothing converted".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from zoneinfo import ZoneInfo

from reports.followup import Rescue, rescue
from reports.periods import Period
from reports.pricing import MONEY_DIGITS
from reports.quantiles import percentile, share_over
from reports.texts.numbers import DEFAULT_CURRENCY
from storage.aggregates import Breakdown, ModelUsage, PeriodAggregates
from storage.event_types import EventType

TOP_LIMIT = 10
# by_location's key for events without a location, like the channel's default "unknown".
NO_LOCATION = "unknown"


@dataclass(frozen=True, slots=True)
class ReportScope:
    """What a report is about and how it is measured."""

    period: Period
    zone: ZoneInfo
    sla_seconds: float
    location: str | None = None
    currency: str = DEFAULT_CURRENCY  # ai.currency: the AI cost is summed in it


@dataclass(frozen=True, slots=True)
class AnswerTimes:
    p50: float | None
    p95: float | None
    over_sla_share: float | None


@dataclass(frozen=True, slots=True)
class AiCost:
    """What the model calls cost (design.md, ``ai_cost``). ``calls`` and the tokens count every event with a
    model; ``total`` sums the costs in ``currency``, so a call without one (no price, no tokens, or a cost in
    another currency) is counted but not valued, and its model is listed in ``unpriced_models``."""

    total: float
    currency: str
    calls: int
    input_tokens: int
    output_tokens: int
    per_lead: float | None
    per_booking: float | None
    by_model: list[tuple[str, float]]
    unpriced_models: list[str]

    def as_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "currency": self.currency,
            "calls": self.calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "per_lead": self.per_lead,
            "per_booking": self.per_booking,
            "by_model": [[model, cost] for model, cost in self.by_model],
            "unpriced_models": list(self.unpriced_models),
        }


def money_ratio(total: float, count: int) -> float | None:
    share = ratio(total, count)
    return None if share is None else round(share, MONEY_DIGITS)


def ai_cost(usage: Sequence[ModelUsage], currency: str, *, leads: int = 0, bookings: int = 0) -> AiCost:
    """The calls' cost in ``currency``; models ordered by cost (then name), unpriced ones by name."""
    by_model: dict[str, float] = {}
    unpriced: set[str] = set()
    for item in usage:
        if item.currency in (None, currency) and item.priced_calls:
            by_model[item.model] = by_model.get(item.model, 0.0) + item.cost
        if item.currency not in (None, currency) or item.priced_calls < item.calls:
            unpriced.add(item.model)
    total = round(sum(by_model.values()), MONEY_DIGITS)
    return AiCost(
        total=total,
        currency=currency,
        calls=sum(item.calls for item in usage),
        input_tokens=sum(item.input_tokens for item in usage),
        output_tokens=sum(item.output_tokens for item in usage),
        per_lead=money_ratio(total, leads),
        per_booking=money_ratio(total, bookings),
        by_model=[
            (model, round(cost, MONEY_DIGITS))
            for model, cost in sorted(by_model.items(), key=lambda item: (-item[1], item[0]))
        ],
        unpriced_models=sorted(unpriced),
    )


@dataclass(frozen=True)
class Report:
    """One period's metrics; ``previous`` is the period of the same length just before it."""

    period: Period
    clients: int
    messages: int
    ai_responses: int
    leads: int
    bookings: int
    no_shows: int
    refusals: int
    payments_paid: int
    revenue: float
    conversion_dialog_to_lead: float | None
    conversion_lead_to_booking: float | None
    visits: int
    cancellations: int
    visit_rate: float | None
    no_show_rate: float | None
    ai_response_seconds: AnswerTimes
    first_message_to_booking_hours_median: float | None
    repeat_booking_share: float | None
    by_channel: dict[str, Breakdown]
    by_location: dict[str, Breakdown] | None
    top_intents: list[tuple[str, int]]
    refusal_reasons: list[tuple[str, int]]
    ai_cost: AiCost
    followup: Rescue
    location: str | None = None
    previous: Report | None = field(default=None, compare=False)
    # Whether any event of the period named a location: by_location is shown when either period's did.
    locations_seen: bool = field(default=False, compare=False, repr=False)
    # Every answer time behind ai_response_seconds (derived ones included), for the answer-time chart.
    answer_seconds: tuple[float, ...] = field(default=(), compare=False, repr=False)

    @property
    def has_data(self) -> bool:
        """Whether anything at all happened in the period: else a change against it means nothing."""
        counts = (self.messages, self.ai_responses, self.leads, self.bookings, self.visits, self.no_shows)
        return any(counts) or bool(self.refusals or self.payments_paid) or bool(self.ai_cost.calls)

    def as_json(self) -> dict[str, Any]:
        """The contract of ``report --json``: the design's keys in its order, then ``previous``."""
        data: dict[str, Any] = {
            "period": {"from": self.period.start_local.isoformat(), "to": self.period.end_local.isoformat()},
            "clients": self.clients,
            "messages": self.messages,
            "ai_responses": self.ai_responses,
            "leads": self.leads,
            "bookings": self.bookings,
            "no_shows": self.no_shows,
            "refusals": self.refusals,
            "payments_paid": self.payments_paid,
            "revenue": self.revenue,
            "conversion_dialog_to_lead": self.conversion_dialog_to_lead,
            "conversion_lead_to_booking": self.conversion_lead_to_booking,
            "visits": self.visits,
            "cancellations": self.cancellations,
            "visit_rate": self.visit_rate,
            "no_show_rate": self.no_show_rate,
            "ai_response_seconds": {
                "p50": self.ai_response_seconds.p50,
                "p95": self.ai_response_seconds.p95,
                "over_sla_share": self.ai_response_seconds.over_sla_share,
            },
            "first_message_to_booking_hours": {"median": self.first_message_to_booking_hours_median},
            "repeat_booking_share": self.repeat_booking_share,
            "by_channel": _breakdown_json(self.by_channel),
        }
        if self.by_location is not None:
            data["by_location"] = _breakdown_json(self.by_location)
        data["top_intents"] = [[name, count] for name, count in self.top_intents]
        data["refusal_reasons"] = [[name, count] for name, count in self.refusal_reasons]
        data["ai_cost"] = self.ai_cost.as_json()
        data["followup"] = {"handled": self.followup.handled, "rescued": self.followup.rescued}
        if self.previous is not None:
            data["previous"] = self.previous.as_json()
        return data


def _breakdown_json(groups: Mapping[str, Breakdown]) -> dict[str, dict[str, int]]:
    return {
        name: {"clients": counts.clients, "leads": counts.leads, "bookings": counts.bookings}
        for name, counts in sorted(groups.items())
    }


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def top(counts: Mapping[str, int], limit: int = TOP_LIMIT) -> list[tuple[str, int]]:
    """Count descending, then name ascending (by code point, the same on every backend)."""
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]


def compute_period(
    period: Period,
    raw: PeriodAggregates,
    *,
    sla_seconds: float,
    location: str | None = None,
    currency: str = DEFAULT_CURRENCY,
) -> Report:
    """One period's metrics from its aggregates; ``compute_report`` sets it beside the previous one."""
    count = raw.event_counts.get
    funnel = raw.funnel
    bookings = count(EventType.APPOINTMENT_BOOKED, 0)
    leads = count(EventType.LEAD_CREATED, 0)
    no_shows = count(EventType.NO_SHOW, 0)
    visits = count(EventType.VISIT, 0)
    latencies = sorted(raw.response_seconds)  # stored in order already: a linear pass, as in percentile()
    hours = [seconds / 3600 for seconds in raw.first_message_to_booking_seconds]
    return Report(
        period=period,
        clients=funnel.clients,
        messages=count(EventType.MESSAGE_RECEIVED, 0),
        ai_responses=count(EventType.ASSISTANT_RESPONSE, 0),
        leads=leads,
        bookings=bookings,
        no_shows=no_shows,
        refusals=count(EventType.REFUSAL, 0),
        payments_paid=raw.payments_paid,
        revenue=raw.revenue,
        conversion_dialog_to_lead=ratio(funnel.clients_with_message_and_lead, funnel.clients),
        conversion_lead_to_booking=ratio(funnel.clients_with_lead_and_booking, funnel.clients_with_lead),
        visits=visits,
        cancellations=count(EventType.APPOINTMENT_CANCELLED, 0),
        visit_rate=ratio(visits, bookings),
        no_show_rate=ratio(no_shows, bookings),
        ai_response_seconds=AnswerTimes(
            p50=percentile(latencies, 50),
            p95=percentile(latencies, 95),
            over_sla_share=share_over(latencies, sla_seconds),
        ),
        first_message_to_booking_hours_median=percentile(hours, 50),
        repeat_booking_share=ratio(raw.repeat_bookings, bookings),
        by_channel=dict(funnel.by_channel),
        by_location={
            NO_LOCATION if name is None else name: counts for name, counts in funnel.by_location.items()
        },
        top_intents=top(raw.intents),
        refusal_reasons=top(raw.refusal_reasons),
        ai_cost=ai_cost(raw.model_usage, currency, leads=leads, bookings=bookings),
        followup=rescue(raw.followup),
        location=location,
        answer_seconds=tuple(latencies),
        locations_seen=any(name is not None for name in funnel.by_location),
    )


def compute_report(current: Report, previous: Report) -> Report:
    """The period with its previous one; by_location appears in both when either period has locations."""
    if not (current.locations_seen or previous.locations_seen):
        current, previous = replace(current, by_location=None), replace(previous, by_location=None)
    return replace(current, previous=previous)
