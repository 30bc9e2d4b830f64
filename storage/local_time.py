"""Local days and hours of a UTC range in a zone: exact for DST and half-hour offsets, worked out in Python
from the zone's data, so a query groups by ranges of the time index instead of a local time per event."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

Bucket = tuple[datetime, datetime]  # UTC, [start, end)


def local_days(start_utc: datetime, end_utc: datetime, zone: tzinfo) -> list[date]:
    """The local days ``[start_utc, end_utc)`` touches; the end is exclusive, as in every report."""
    if start_utc.tzinfo is None or end_utc.tzinfo is None:
        raise ValueError("period bounds must be aware datetimes")
    first = start_utc.astimezone(zone).date()
    last = max(first, (end_utc - timedelta(microseconds=1)).astimezone(zone).date())
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


# Zone transitions are months apart; probing every few hours cannot step over two of them.
_OFFSET_PROBE = timedelta(hours=6)


def _offset(moment: datetime, zone: ZoneInfo) -> timedelta:
    offset = moment.astimezone(zone).utcoffset()
    assert offset is not None  # a ZoneInfo always knows its offset for an aware moment
    return offset


def offset_spans(start_utc: datetime, end_utc: datetime, zone: ZoneInfo) -> list[tuple[datetime, timedelta]]:
    """Stretches of ``[start_utc, end_utc)`` with one UTC offset each: (where it starts, the offset)."""
    spans = [(start_utc, _offset(start_utc, zone))]
    probe = start_utc
    while probe < end_utc:
        step_end = min(probe + _OFFSET_PROBE, end_utc)
        if _offset(step_end, zone) != spans[-1][1]:
            # The offset changes in (probe, step_end]; zone data switch on a whole second, so search those.
            low, high = math.floor(probe.timestamp()), math.ceil(step_end.timestamp())
            while high - low > 1:
                middle = (low + high) // 2
                if _offset(datetime.fromtimestamp(middle, UTC), zone) == spans[-1][1]:
                    low = middle
                else:
                    high = middle
            switch = datetime.fromtimestamp(high, UTC)
            if switch < end_utc:
                spans.append((switch, _offset(switch, zone)))
        probe = step_end
    return spans


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), zone).astimezone(UTC)


def local_day_buckets(start_utc: datetime, end_utc: datetime, zone: ZoneInfo) -> list[tuple[date, Bucket]]:
    """Each local day of ``[start_utc, end_utc)`` with its UTC bounds (a DST day is 23 or 25 hours)."""
    return [
        (
            day,
            (
                max(start_utc, _local_midnight(day, zone)),
                min(end_utc, _local_midnight(day + timedelta(days=1), zone)),
            ),
        )
        for day in local_days(start_utc, end_utc, zone)
    ]


def local_hour_buckets(
    start_utc: datetime, end_utc: datetime, zone: ZoneInfo
) -> list[tuple[tuple[int, int], Bucket]]:
    """(local weekday, local hour) of each stretch of ``[start_utc, end_utc)`` that has one of each."""
    switches = [moment for moment, _ in offset_spans(start_utc, end_utc, zone)[1:]]
    buckets = []
    moment = start_utc
    while moment < end_utc:
        local = moment.astimezone(zone)
        next_hour = moment + timedelta(
            minutes=60 - local.minute, seconds=-local.second, microseconds=-local.microsecond
        )
        until = min([next_hour, end_utc, *(switch for switch in switches if switch > moment)])
        buckets.append(((local.weekday(), local.hour), (moment, until)))
        moment = until
    return buckets
