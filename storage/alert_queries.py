"""What the alert rules (reports/alerts.py) need at a moment ``now``, in a few small queries.

Every window ends at ``now``, exclusive, so ``alerts check --now`` in the past ignores what came later.
"Days before" are local days: the same wall-clock hours, also across a DST change. Events are always
read with a list of event types, so the range goes through ``ix_events_event_ts`` (event, ts).
AI answer times come from the report's own query, so an alert and ``/report`` never disagree on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta, tzinfo
from itertools import pairwise
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import Subquery

from storage.alert_inputs import (
    ALL_CHANNELS,
    ANSWER_WINDOW,
    CONVERSION_HISTORY_DAYS,
    INGEST_WINDOW,
    NO_SHOW_HISTORY_DAYS,
    NO_SHOW_RECENT_DAYS,
    SILENCE_HISTORY_DAYS,
    AlertInputs,
    AnswerTimes,
    ChannelTraffic,
    MonthUsage,
    Proportion,
    RateComparison,
    Rejections,
)
from storage.bookings import counted_booking
from storage.event_types import EventType
from storage.models import QuarantinedPayload, StoredEvent
from storage.report_queries import load_model_usage, load_period_aggregates, one_if

# A channel quiet for longer is taken as closed, not down: its verdict goes away.
SILENCE_FORGET_DAYS = 30
# What a working assistant and its CRM send; custom events (a manager's message) do not prove it is alive.
TRAFFIC_EVENTS = (
    EventType.MESSAGE_RECEIVED,
    EventType.ASSISTANT_RESPONSE,
    EventType.LEAD_CREATED,
    EventType.APPOINTMENT_BOOKED,
    EventType.PAYMENT_STATUS,
    EventType.NO_SHOW,
    EventType.REFUSAL,
)

events = StoredEvent.__table__


def days_before(moment: datetime, days: int, zone: tzinfo) -> datetime:
    """The same local wall-clock time ``days`` days earlier, in UTC."""
    return (moment.astimezone(zone) - timedelta(days=days)).astimezone(UTC)


Window = tuple[datetime, datetime]


def _day_windows(now: datetime, days_ago: Sequence[int], zone: tzinfo) -> list[Window]:
    """Back-to-back windows, newest first: the i-th ends ``days_ago[i]`` local days before now."""
    bounds = [days_before(now, days, zone) for days in days_ago]
    return [(start, end) for end, start in pairwise(bounds)]


def _tagged(
    windows: Sequence[Window], names: Sequence[str], *columns: Any, only: ColumnElement[bool] | None = None
) -> Subquery:
    """The events of these types (and matching ``only``) in the windows, each with its window's index.

    Tagged in a subquery and grouped outside it: PostgreSQL would not match a GROUP BY expression that
    has its own parameters.
    """
    ts = events.c.ts
    inside = [and_(ts >= start, ts < end) for start, end in windows]
    window = case(*((condition, index) for index, condition in enumerate(inside)))
    conditions = [
        events.c.event.in_(names),
        # The overall range is what the index reads; the windows may leave gaps in it.
        ts >= min(start for start, _ in windows),
        ts < max(end for _, end in windows),
        or_(*inside),
    ]
    if only is not None:
        conditions.append(only)
    return select(window.label("window"), *columns).where(*conditions).subquery("tagged")


async def _conversion(session: AsyncSession, now: datetime, zone: tzinfo) -> RateComparison:
    """Clients who wrote, and of them those with a lead, per day-long window; the history is summed.

    Counting per window (a dialog is a client's day) keeps the history comparable with the last day: over
    14 days together one client's several visits would count once, and conversion would look higher.
    """
    windows = _day_windows(now, range(CONVERSION_HISTORY_DAYS + 2), zone)
    tagged = _tagged(
        windows, (EventType.MESSAGE_RECEIVED, EventType.LEAD_CREATED), events.c.user_id, events.c.event
    )
    per_user = (
        select(
            tagged.c.window,
            func.max(one_if(tagged.c.event == EventType.MESSAGE_RECEIVED)).label("wrote"),
            func.max(one_if(tagged.c.event == EventType.LEAD_CREATED)).label("led"),
        )
        .group_by(tagged.c.window, tagged.c.user_id)
        .subquery("per_user")
    )
    statement = select(
        per_user.c.window, func.sum(per_user.c.wrote), func.sum(per_user.c.wrote * per_user.c.led)
    ).group_by(per_user.c.window)
    recent, history = Proportion(0, 0), Proportion(0, 0)
    for window, wrote, converted in await session.execute(statement):
        counted = Proportion(int(converted or 0), int(wrote or 0))
        if window == 0:
            recent = counted
        else:
            history = Proportion(history.hits + counted.hits, history.total + counted.total)
    return RateComparison(recent, history, since=windows[0][0])


async def _no_shows(session: AsyncSession, now: datetime, zone: tzinfo) -> RateComparison:
    windows = _day_windows(now, (0, NO_SHOW_RECENT_DAYS, NO_SHOW_RECENT_DAYS + NO_SHOW_HISTORY_DAYS), zone)
    tagged = _tagged(
        windows,
        (EventType.APPOINTMENT_BOOKED, EventType.NO_SHOW),
        events.c.event,
        only=counted_booking(events),
    )
    statement = select(tagged.c.window, tagged.c.event, func.count()).group_by(
        tagged.c.window, tagged.c.event
    )
    counts = {
        (int(window), str(name)): int(count) for window, name, count in await session.execute(statement)
    }
    recent, history = (
        Proportion(counts.get((w, EventType.NO_SHOW), 0), counts.get((w, EventType.APPOINTMENT_BOOKED), 0))
        for w in (0, 1)
    )
    return RateComparison(recent, history, since=windows[0][0])


async def _answer_times(session: AsyncSession, now: datetime) -> AnswerTimes:
    since = now - ANSWER_WINDOW
    aggregates = await load_period_aggregates(session, (since, now))
    return AnswerTimes(tuple(aggregates.response_seconds), since)


def _history(now: datetime, last_event_at: datetime, silence_hours: float, zone: tzinfo) -> list[Window]:
    """The local hours of the current quiet stretch on each of the history days before the quiet began.

    The stretch runs from the last event (or ``silence_hours`` ago when the channel spoke since) to now,
    at most a day, so the days never overlap. Days reaching into the quiet itself are skipped: else a long
    outage would become its own history and look usual after a few days.
    """
    start = max(min(last_event_at, now - timedelta(hours=silence_hours)), now - timedelta(days=1))
    first = 1
    while days_before(now, first, zone) > last_event_at:
        first += 1
    return [
        (days_before(start, days, zone), days_before(now, days, zone))
        for days in range(first, first + SILENCE_HISTORY_DAYS)
    ]


async def _clients_per_day(session: AsyncSession, channel: str, windows: Sequence[Window]) -> tuple[int, ...]:
    """Distinct clients of the channel (all channels for ``ALL_CHANNELS``) in each window."""
    only = None if channel == ALL_CHANNELS else events.c.channel == channel
    tagged = _tagged(windows, TRAFFIC_EVENTS, events.c.user_id, only=only)
    statement = select(tagged.c.window, func.count(tagged.c.user_id.distinct())).group_by(tagged.c.window)
    clients = {int(window): int(count) for window, count in await session.execute(statement)}
    return tuple(clients.get(window, 0) for window in range(len(windows)))


async def _channels(
    session: AsyncSession, now: datetime, zone: tzinfo, silence_hours: float
) -> tuple[ChannelTraffic, ...]:
    """All channels together and each channel heard from within ``SILENCE_FORGET_DAYS``: the last event
    and the clients per day in the same hours before (``_history``)."""
    lookback = days_before(now, SILENCE_FORGET_DAYS, zone)
    last_events = (
        select(events.c.channel, func.max(events.c.ts))
        .where(events.c.event.in_(TRAFFIC_EVENTS), events.c.ts >= lookback, events.c.ts < now)
        .group_by(events.c.channel)
    )
    last_by_channel: dict[str, datetime] = {
        channel: last_event_at for channel, last_event_at in await session.execute(last_events)
    }
    if last_by_channel:
        last_by_channel[ALL_CHANNELS] = max(last_by_channel.values())
    traffic: list[ChannelTraffic] = []
    for channel, last_event_at in last_by_channel.items():
        windows = _history(now, last_event_at, silence_hours, zone)
        traffic.append(
            ChannelTraffic(channel, last_event_at, await _clients_per_day(session, channel, windows))
        )
    return tuple(traffic)


async def _rejections(session: AsyncSession, now: datetime) -> Rejections:
    since = now - INGEST_WINDOW
    received = QuarantinedPayload.received_at
    in_window = and_(received >= since, received < now)
    count, first_at = (await session.execute(select(func.count(), func.min(received)).where(in_window))).one()
    latest = (
        await session.execute(
            select(QuarantinedPayload).where(in_window).order_by(QuarantinedPayload.id.desc()).limit(1)
        )
    ).scalar_one_or_none()
    if latest is None:
        return Rejections(int(count), since)
    reason = None
    if latest.errors:
        error = latest.errors[0]
        reason = f"{error.get('field') or '—'}: {error.get('message')}"
    return Rejections(int(count), since, first_at, latest.source, reason)


async def _month_model_calls(session: AsyncSession, now: datetime, zone: tzinfo) -> MonthUsage:
    """The local month's model calls up to ``now``, from ix_events_model_ts."""
    first = now.astimezone(zone).date().replace(day=1)
    following = (first + timedelta(days=31)).replace(day=1)
    start, end = (datetime.combine(day, time(), zone).astimezone(UTC) for day in (first, following))
    usage = await load_model_usage(session, events.c.ts >= start, events.c.ts < now)
    return MonthUsage(start, end, usage)


async def gather_inputs(
    session: AsyncSession, now: datetime, zone: tzinfo, *, silence_hours: float
) -> AlertInputs:
    """Every rule's inputs at ``now`` (aware), read in one session; ``zone`` makes the local days."""
    if now.tzinfo is None:
        raise ValueError("gather_inputs needs an aware moment; read naive input in the configured zone first")
    now = now.astimezone(UTC)
    return AlertInputs(
        now=now,
        zone=zone,
        conversion=await _conversion(session, now, zone),
        no_shows=await _no_shows(session, now, zone),
        answers=await _answer_times(session, now),
        channels=await _channels(session, now, zone, silence_hours),
        rejections=await _rejections(session, now),
        model_calls=await _month_model_calls(session, now, zone),
    )
