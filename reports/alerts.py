"""Alert rules (issue 5): pure functions from the numbers of a moment to one verdict per rule and scope.

Every rule answers "firing or not" every time, so whoever keeps alert state can send "resolved" when a
rule that fired no longer does. A small salon has a few dialogs a day, so the rate rules fire only on a
change that is large, measured on enough clients, and unlikely to be chance (a one-sided two-proportion
z-test); owners mute a bot that cries wolf.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, tzinfo

from pydantic import BaseModel, ConfigDict, Field, field_validator

from reports.followup import FollowupItem
from reports.metrics import ai_cost
from reports.quantiles import percentile, share_over
from reports.texts import alerts as texts
from storage.alert_inputs import (
    CONVERSION_HISTORY_DAYS,
    NO_SHOW_HISTORY_DAYS,
    NO_SHOW_RECENT_DAYS,
    AlertInputs,
    AnswerTimes,
    ChannelTraffic,
    MonthUsage,
    Proportion,
    RateComparison,
    Rejections,
)
from storage.followup_items import ListKind

CONVERSION_DROP, NO_SHOW_SPIKE, SLOW_AI = "conversion_drop", "no_show_spike", "slow_ai"
SOURCE_SILENT, INGEST_ERRORS = "source_silent", "ingest_errors"
AI_BUDGET, UNANSWERED = "ai_budget", "unanswered"
RULES = (CONVERSION_DROP, NO_SHOW_SPIKE, SLOW_AI, SOURCE_SILENT, INGEST_ERRORS, AI_BUDGET, UNANSWERED)
# Shares of ai.monthly_budget the owners hear about, once each per month.
BUDGET_LEVELS = (0.8, 1.0)
# Rules about one client's case rather than the business: a verdict per client (scope = the client id),
# said once per case (a new ``since`` is a new case), closed silently when the client leaves the list,
# and heard by the staff too. Each names the follow-up list its clients come from.
CASE_RULES = {UNANSWERED: ListKind.UNANSWERED}
_HOURS_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


def working_hours(text: str) -> tuple[time, time | None]:
    """Working hours like 09:00-21:00 as (start, end); an end of 24:00 is None. ValueError if malformed."""
    match = _HOURS_RE.match(text)
    if match is None or (match[3] == "24" and match[4] != "00"):
        raise ValueError("must be hours like 09:00-21:00 (local time; 21:00-09:00 spans midnight)")
    start = time(int(match[1]), int(match[2]))
    end = None if match[3] == "24" else time(int(match[3]), int(match[4]))
    return start, end


class AlertSettings(BaseModel):
    """``[alerts]``: the rules' thresholds. Minimum samples keep a small salon's bot from crying wolf."""

    model_config = ConfigDict(extra="forbid")

    check_minutes: int = Field(default=10, ge=1, le=1440)
    conversion_drop: float = 0.30
    min_clients: int = Field(default=20, ge=1)
    p_value: float = 0.01
    no_show_rise: float = Field(default=0.30, gt=0)
    no_show_min_bookings: int = Field(default=20, ge=1)
    slow_ai_min_answers: int = Field(default=20, ge=1)
    slow_ai_over_sla_share: float = 0.10
    silence_hours: float = Field(default=2.0, gt=0, le=168)
    silence_min_days: int = Field(default=13, ge=1, le=14)
    silence_p_value: float = 0.001
    ingest_errors_per_hour: int = Field(default=10, ge=1)
    cooldown_hours: float = Field(default=6.0, ge=0)
    working_hours: str = "09:00-21:00"
    unanswered_max_per_check: int = Field(default=5, ge=1)

    @field_validator("working_hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        working_hours(value)
        return value

    def is_working_time(self, local: time) -> bool:
        """Inside ``working_hours`` (start included, end not); a range like 21:00-09:00 spans midnight,
        and equal ends mean the whole day."""
        start, end = working_hours(self.working_hours)
        if start == end:
            return True
        if end is None:
            return local >= start
        if start < end:
            return start <= local < end
        return local >= start or local < end

    @field_validator("conversion_drop", "p_value", "slow_ai_over_sla_share", "silence_p_value")
    @classmethod
    def _share(cls, value: float) -> float:
        # "30" meant as percent would silently disable the rule; say how to write it instead.
        if not 0 < value < 1:
            raise ValueError("must be a share between 0 and 1 (0.3 means 30%)")
        return value


Numbers = dict[str, float | int]


@dataclass(frozen=True, slots=True)
class AiBudget:
    """``ai.monthly_budget`` in ``ai.currency``."""

    monthly: float
    currency: str


@dataclass(frozen=True)
class AlertVerdict:
    """Where one rule stands for one scope at one moment, firing or not.

    ``scope`` is "" for the business as a whole, else a channel (``source_silent``: "" is all channels), or
    for a rule of ``CASE_RULES`` the client (``client_id``, as text).

    ``text`` is Russian plain text, safe to send as Telegram HTML (sources' strings are escaped);
    ``check`` is what to look at first, also part of ``text``.
    """

    rule: str
    scope: str
    firing: bool
    value: float | None
    baseline: float | None
    p_value: float | None
    numbers: Numbers
    since: datetime | None
    text: str
    check: str
    # False: said once per scope and never again, and no "resolved" (a budget level of one month).
    repeats: bool = True
    client_id: int | None = None


def lower_rate_p_value(lower: Proportion, higher: Proportion) -> float | None:
    """One-sided p-value of the pooled two-proportion z-test that ``lower``'s rate is below ``higher``'s.

    None when a sample is empty. Hits are capped at the total (a no-show may belong to a booking of an
    earlier window). When the pooled rate is 0 or 1 the samples cannot differ: 1.0, no evidence.
    """
    if lower.total <= 0 or higher.total <= 0:
        return None
    low_hits, high_hits = min(lower.hits, lower.total), min(higher.hits, higher.total)
    pooled = (low_hits + high_hits) / (lower.total + higher.total)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / lower.total + 1 / higher.total))
    if spread == 0:
        return 1.0
    z = (high_hits / higher.total - low_hits / lower.total) / spread
    # 1 − Φ(z) through erfc: exact in the far tail, where 1 − cdf would round to 0.
    return 0.5 * math.erfc(z / math.sqrt(2))


def _relative_change(value: float | None, baseline: float | None) -> float | None:
    """(value − baseline) / baseline; from nothing to something is an infinite rise, left to the test."""
    if value is None or baseline is None:
        return None
    if baseline == 0:
        return math.inf if value > 0 else None
    return (value - baseline) / baseline


def _rate_verdict(
    wording: texts.RateWording,
    data: RateComparison,
    *,
    rising: bool,
    threshold: float,
    minimum: int,
    p_limit: float,
    days: tuple[int, int],
    names: tuple[str, str],
    zone: tzinfo,
) -> AlertVerdict:
    """A rate that moved the bad way (up when ``rising``) by ``threshold`` of itself, on ``minimum`` or
    more in both samples, with a one-sided test below ``p_limit``; ``names`` are (hits, total) keys."""
    value, baseline = data.recent.rate, data.baseline.rate
    change = _relative_change(value, baseline)
    lower, higher = (data.baseline, data.recent) if rising else (data.recent, data.baseline)
    p_value = lower_rate_p_value(lower, higher)
    enough = min(data.recent.total, data.baseline.total) >= minimum
    worse = change is not None and (change if rising else -change) >= threshold
    firing = enough and worse and p_value is not None and p_value < p_limit
    recent = (data.recent.hits, data.recent.total)
    before = (data.baseline.hits, data.baseline.total)
    hits, total = names
    return AlertVerdict(
        rule=wording.rule,
        scope="",
        firing=firing,
        value=value,
        baseline=baseline,
        p_value=p_value,
        numbers={
            total: recent[1],
            hits: recent[0],
            f"baseline_{total}": before[1],
            f"baseline_{hits}": before[0],
        },
        since=data.since,
        text=texts.rate_text(
            wording,
            firing=firing,
            enough=enough,
            recent=recent,
            baseline=before,
            days=days,
            p_value=p_value,
            minimum=minimum,
            since=data.since,
            zone=zone,
        ),
        check=texts.CHECKS[wording.rule],
    )


def conversion_drop(data: RateComparison, settings: AlertSettings, zone: tzinfo) -> AlertVerdict:
    """Dialog→lead conversion of the last 24 hours fell against the same hours of the days before."""
    return _rate_verdict(
        texts.CONVERSION,
        data,
        rising=False,
        threshold=settings.conversion_drop,
        minimum=settings.min_clients,
        p_limit=settings.p_value,
        days=(1, CONVERSION_HISTORY_DAYS),
        names=("clients_with_lead", "clients"),
        zone=zone,
    )


def no_show_spike(data: RateComparison, settings: AlertSettings, zone: tzinfo) -> AlertVerdict:
    """The no-show rate of the last week rose against the four weeks before."""
    return _rate_verdict(
        texts.NO_SHOWS,
        data,
        rising=True,
        threshold=settings.no_show_rise,
        minimum=settings.no_show_min_bookings,
        p_limit=settings.p_value,
        days=(NO_SHOW_RECENT_DAYS, NO_SHOW_HISTORY_DAYS),
        names=("no_shows", "bookings"),
        zone=zone,
    )


def slow_ai(data: AnswerTimes, settings: AlertSettings, sla_seconds: float, zone: tzinfo) -> AlertVerdict:
    """Fires when, on enough answers, p95 is over the SLA or too many answers are."""
    seconds = data.seconds
    p95 = percentile(seconds, 95)
    over_share = share_over(seconds, sla_seconds)
    enough = len(seconds) >= settings.slow_ai_min_answers
    firing = enough and (
        (p95 is not None and p95 > sla_seconds)
        or (over_share is not None and over_share > settings.slow_ai_over_sla_share)
    )
    over = sum(1 for value in seconds if value > sla_seconds)
    numbers: Numbers = {"answers": len(seconds), "over_sla": over}
    for name, number in (("p50", percentile(seconds, 50)), ("p95", p95), ("over_sla_share", over_share)):
        if number is not None:
            numbers[name] = number
    text = texts.slow_ai_text(
        firing=firing,
        enough=enough,
        answers=len(seconds),
        over=over,
        p95=p95,
        sla_seconds=sla_seconds,
        min_answers=settings.slow_ai_min_answers,
        since=data.since,
        zone=zone,
    )
    return AlertVerdict(
        rule=SLOW_AI,
        scope="",
        firing=firing,
        value=p95,
        baseline=sla_seconds,
        p_value=None,
        numbers=numbers,
        since=data.since,
        text=text,
        check=texts.CHECKS[SLOW_AI],
    )


def silence_p_value(clients_per_day: Sequence[int]) -> float:
    """The chance of not one client in hours that brought these many on the days they had any.

    Today is taken to be like one of those days, each equally likely, with Poisson arrivals at that day's
    count: the mean of e^−count. Unlike e^−mean, one slow day among busy ones keeps the chance realistic.
    Days without traffic are days off, judged by ``silence_min_days`` instead. No such day: 1.0.
    """
    counts = [count for count in clients_per_day if count]
    return sum(math.exp(-count) for count in counts) / len(counts) if counts else 1.0


def source_silent(
    traffic: ChannelTraffic, settings: AlertSettings, now: datetime, zone: tzinfo
) -> AlertVerdict:
    """Fires when a channel has been quiet for ``silence_hours`` in hours that usually bring it clients.

    Three conditions, so that the bot does not cry wolf: the quiet is long enough; the channel had traffic
    in those hours on nearly every recent day (so a weekly day off is not "usual traffic"); and those
    days brought so many clients that none at all is unlikely by chance (p below ``silence_p_value``,
    stricter than ``p_value`` because silence is checked all day long, a dozen stretches a day). The stretch
    starts at the last event, so a silence that began in the afternoon keeps firing into the night, when
    the channel is quiet anyway, until events arrive again.
    """
    silent_hours = max(0.0, (now - traffic.last_event_at).total_seconds() / 3600)
    p_value = silence_p_value(traffic.clients_per_day)
    firing = (
        silent_hours >= settings.silence_hours
        and traffic.active_days >= settings.silence_min_days
        and p_value < settings.silence_p_value
    )
    text = texts.silence_text(
        firing=firing,
        channel=traffic.channel,
        silent_hours=silent_hours,
        active_days=traffic.active_days,
        history_days=len(traffic.clients_per_day),
        usual_clients=traffic.usual_clients,
        p_value=p_value,
        last_event_at=traffic.last_event_at,
        zone=zone,
    )
    return AlertVerdict(
        rule=SOURCE_SILENT,
        scope=traffic.channel,
        firing=firing,
        value=silent_hours,
        baseline=settings.silence_hours,
        p_value=p_value,
        numbers={
            "silent_hours": silent_hours,
            "active_days": traffic.active_days,
            "history_days": len(traffic.clients_per_day),
            "usual_clients": traffic.usual_clients,
        },
        since=traffic.last_event_at,
        text=text,
        check=texts.silence_check(traffic.channel),
    )


def ingest_errors(data: Rejections, settings: AlertSettings, zone: tzinfo) -> AlertVerdict:
    """Fires when the quarantine took ``ingest_errors_per_hour`` or more payloads within the last hour."""
    firing = data.count >= settings.ingest_errors_per_hour
    text = texts.ingest_errors_text(
        firing=firing,
        count=data.count,
        threshold=settings.ingest_errors_per_hour,
        first_at=data.first_at,
        latest_source=data.latest_source,
        latest_reason=data.latest_reason,
        zone=zone,
    )
    return AlertVerdict(
        rule=INGEST_ERRORS,
        scope="",
        firing=firing,
        value=data.count,
        baseline=settings.ingest_errors_per_hour,
        p_value=None,
        numbers={"rejected": data.count},
        since=data.first_at,
        text=text,
        check=texts.CHECKS[INGEST_ERRORS],
    )


def ai_budget(data: MonthUsage, budget: AiBudget, now: datetime, zone: tzinfo) -> list[AlertVerdict]:
    """One verdict per level of ``BUDGET_LEVELS``, scoped to the local month, so each is said once a month:
    the month-to-date spend against the budget, with the month's forecast at the pace so far."""
    spent = ai_cost(data.usage, budget.currency).total
    share = spent / budget.monthly
    elapsed = (now - data.start) / (data.end - data.start)
    forecast = spent / elapsed if elapsed > 0 else None
    numbers: Numbers = {"spent": spent, "budget": budget.monthly, "share": share}
    if forecast is not None:
        numbers["forecast"] = forecast
    month = data.start.astimezone(zone)
    return [
        AlertVerdict(
            rule=AI_BUDGET,
            scope=f"{month:%Y-%m} {level:.0%}",
            firing=share >= level,
            value=share,
            baseline=level,
            p_value=None,
            numbers=numbers,
            since=data.start,
            text=texts.budget_text(
                firing=share >= level,
                level=level,
                spent=spent,
                budget=budget.monthly,
                forecast=forecast,
                currency=budget.currency,
                month=month,
            ),
            check=texts.CHECKS[AI_BUDGET],
            repeats=False,
        )
        for level in BUDGET_LEVELS
    ]


def unanswered(
    waiting: Sequence[FollowupItem], settings: AlertSettings, now: datetime, zone: tzinfo
) -> list[AlertVerdict]:
    """A verdict per client on the ``unanswered`` list (waiting longer than ``followup.unanswered_minutes``),
    firing only within ``working_hours``: nobody is woken at night, and who still waits when the day starts
    is told then."""
    firing = settings.is_working_time(now.astimezone(zone).time())
    verdicts = []
    for item in waiting:
        minutes = (now - item.since).total_seconds() / 60
        verdicts.append(
            AlertVerdict(
                rule=UNANSWERED,
                scope=str(item.client_id),
                firing=firing,
                value=minutes,
                baseline=None,
                p_value=None,
                numbers={"waited_minutes": minutes},
                since=item.since,
                text=texts.unanswered_text(item, now, zone),
                check=texts.CHECKS[UNANSWERED],
                client_id=item.client_id,
            )
        )
    return verdicts


def evaluate_all(
    inputs: AlertInputs,
    settings: AlertSettings,
    sla_seconds: float,
    waiting: Sequence[FollowupItem] = (),
    budget: AiBudget | None = None,
) -> list[AlertVerdict]:
    """Every rule's verdict at ``inputs.now``, firing or not; ``source_silent`` for all channels together
    and for each channel; ``unanswered`` for each client of ``waiting`` (the follow-up list);
    ``ai_budget`` only with a budget."""
    zone = inputs.zone
    return [
        conversion_drop(inputs.conversion, settings, zone),
        no_show_spike(inputs.no_shows, settings, zone),
        slow_ai(inputs.answers, settings, sla_seconds, zone),
        *(
            source_silent(traffic, settings, inputs.now, zone)
            for traffic in sorted(inputs.channels, key=lambda item: item.channel)
        ),
        ingest_errors(inputs.rejections, settings, zone),
        *(ai_budget(inputs.model_calls, budget, inputs.now, zone) if budget is not None else ()),
        *unanswered(waiting, settings, inputs.now, zone),
    ]
