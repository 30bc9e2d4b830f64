"""Numbers and times the Russian way: 1 234, 52,9 %, 25.11.2026 09:00."""

from __future__ import annotations

from datetime import datetime, tzinfo

NBSP = "\u00a0"


def format_int(value: int) -> str:
    return f"{value:,}".replace(",", NBSP)


def format_decimal(value: float, digits: int = 1) -> str:
    text = f"{value:,.{digits}f}".replace(",", NBSP).replace(".", ",")
    return text


def format_local(moment: datetime, zone: tzinfo, pattern: str = "%d.%m.%Y %H:%M") -> str:
    return moment.astimezone(zone).strftime(pattern)
