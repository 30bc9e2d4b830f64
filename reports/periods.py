"""Report periods: whole local days ``[from 00:00, to + 1 day 00:00)`` in the configured zone.

Relative names are counted from ``now`` in that zone and always end today, so a report asked for in
the morning already shows today's events: ``today``; ``yesterday``; ``7d`` and ``30d`` are the last 7
or 30 days including today; ``month`` is the current calendar month to date. The Telegram default
(issue 4: "yesterday and the 7 days before") is ``default_period``: the 8 whole days ending yesterday.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

PERIOD_NAMES = ("today", "yesterday", "7d", "30d", "month")
DEFAULT_DAYS_BEFORE_YESTERDAY = 7
# Far enough apart for every real report, and the previous period and UTC bounds never overflow.
EARLIEST_DATE = date(1970, 1, 1)
LATEST_DATE = date(9000, 12, 31)
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LAST_DAYS = {"7d": 7, "30d": 30}


@dataclass(frozen=True, slots=True)
class Period:
    """Local days from ``start_local`` to ``end_local``, both included."""

    start_local: date
    end_local: date

    def __post_init__(self) -> None:
        if self.end_local < self.start_local:
            raise ValueError(f"period ends ({self.end_local}) before it starts ({self.start_local})")

    @property
    def days(self) -> int:
        return (self.end_local - self.start_local).days + 1

    def utc_bounds(self, zone: tzinfo) -> tuple[datetime, datetime]:
        """[start, end) in UTC: the local midnight that opens the first day and the one after the last."""
        start = datetime.combine(self.start_local, time(0), tzinfo=zone)
        end = datetime.combine(self.end_local + timedelta(days=1), time(0), tzinfo=zone)
        return start.astimezone(UTC), end.astimezone(UTC)

    def previous(self) -> Period:
        """The period of the same number of days that ends the day before this one starts."""
        end = self.start_local - timedelta(days=1)
        return Period(end - timedelta(days=self.days - 1), end)


def local_today(now: datetime, zone: tzinfo) -> date:
    """The local date of ``now``; a naive ``now`` is read as local time, like naive event timestamps."""
    return now.date() if now.tzinfo is None else now.astimezone(zone).date()


def _parse_date(text: str) -> date:
    if not _DATE_RE.match(text):
        raise ValueError(f"bad date {text!r}: expected YYYY-MM-DD")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"bad date {text!r}: no such day") from None
    if not EARLIEST_DATE <= day <= LATEST_DATE:
        raise ValueError(f"bad date {text!r}: must be between {EARLIEST_DATE} and {LATEST_DATE}")
    return day


def period_between(start: str, end: str) -> Period:
    """``--from``/``--to`` style: two ISO dates, both days included."""
    first, last = _parse_date(start), _parse_date(end)
    if last < first:
        raise ValueError(f"bad period {start}..{end}: the end is before the start")
    return Period(first, last)


def parse_period(text: str, now: datetime, zone: tzinfo) -> Period:
    """today | yesterday | 7d | 30d | month | YYYY-MM-DD | YYYY-MM-DD..YYYY-MM-DD, relative to ``now``."""
    value = text.strip().lower()
    today = local_today(now, zone)
    if value == "today":
        return Period(today, today)
    if value == "yesterday":
        yesterday = today - timedelta(days=1)
        return Period(yesterday, yesterday)
    if value in _LAST_DAYS:
        return Period(today - timedelta(days=_LAST_DAYS[value] - 1), today)
    if value == "month":
        return Period(today.replace(day=1), today)
    if ".." in value:
        start, _, end = value.partition("..")
        return period_between(start, end)
    if _DATE_RE.match(value):
        return period_between(value, value)
    names = "|".join(PERIOD_NAMES)
    raise ValueError(f"bad period {text!r}: expected {names}, YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD")


def default_period(now: datetime, zone: tzinfo) -> Period:
    """Yesterday and the 7 days before it: 8 whole days, none of them still going on."""
    yesterday = local_today(now, zone) - timedelta(days=1)
    return Period(yesterday - timedelta(days=DEFAULT_DAYS_BEFORE_YESTERDAY), yesterday)
