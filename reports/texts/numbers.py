"""Numbers, money and times the Russian way: 1 234, 52,9 %, 228 850 ₽, 25.11.2026 09:00; and how a value
changed against the previous period. The only formatter: every text and chart uses these."""

from __future__ import annotations

from datetime import date, datetime, timedelta, tzinfo

NBSP = "\u00a0"
NONE = "—"  # a ratio with nothing to divide by, a median of nothing
MINUS = "−"
UP, DOWN = "▲", "▼"
UNCHANGED = " = без изменений"
NO_PREVIOUS = "нет данных за прошлый период"
DEFAULT_CURRENCY = "RUB"
_CURRENCY_SIGNS = {"RUB": "₽", "USD": "$", "EUR": "€"}


def format_int(value: int) -> str:
    return f"{value:,}".replace(",", NBSP)


def format_decimal(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}".replace(",", NBSP).replace(".", ",")


def format_compact(value: float, digits: int = 1) -> str:
    """1,5 and 3 (not 3,0): at most ``digits`` (≥ 1) decimals, none when they are zeros."""
    return f"{value:.{digits}f}".rstrip("0").rstrip(".").replace(".", ",")


def format_percent(share: float | None, digits: int = 1) -> str:
    """0.529 → "52,9 %"; None (a ratio with nothing to divide by) → "—"."""
    return NONE if share is None else f"{format_decimal(share * 100, digits)}{NBSP}%"


def format_amount(value: float) -> str:
    """Whole amounts without kopecks, others with two digits: 45 600 and 1 234,50."""
    return format_int(round(value)) if value == round(value) else format_decimal(value, 2)


def format_money(value: float | None, currency: str = DEFAULT_CURRENCY) -> str:
    """An amount with its currency: 228 850 ₽, 12,48 ₽, 10 KZT; None → "—"."""
    if value is None:
        return NONE
    return f"{format_amount(value)}{NBSP}{_CURRENCY_SIGNS.get(currency.upper(), currency)}"


def format_cost(value: float | None, currency: str = DEFAULT_CURRENCY) -> str:
    """Money that may be a fraction of a kopeck (one model call): 0,024 ₽, 0,0003 ₽; from 1 on as money."""
    if value is None or abs(value) >= 1 or value == 0:
        return format_money(value, currency)
    return f"{format_compact(value, 4)}{NBSP}{_CURRENCY_SIGNS.get(currency.upper(), currency)}"


def format_quantity(value: float | None, unit: str) -> str:
    return NONE if value is None else f"{format_decimal(value)}{NBSP}{unit}"


def format_local(moment: datetime, zone: tzinfo, pattern: str = "%d.%m.%Y %H:%M") -> str:
    return moment.astimezone(zone).strftime(pattern)


def format_duration(elapsed: timedelta) -> str:
    """How long, roughly: "меньше минуты", "12 мин", "1 ч 5 мин", "3 дн 2 ч"."""
    minutes = max(int(elapsed.total_seconds() // 60), 0)
    if minutes < 1:
        return "меньше минуты"
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days}{NBSP}дн" + (f" {hours}{NBSP}ч" if hours else "")
    if hours:
        return f"{hours}{NBSP}ч" + (f" {minutes}{NBSP}мин" if minutes else "")
    return f"{minutes}{NBSP}мин"


def format_days(start: date, end: date) -> str:
    """A range of whole days: 01.03.2025 — 07.03.2025, or one day."""
    first, last = start.strftime("%d.%m.%Y"), end.strftime("%d.%m.%Y")
    return first if start == end else f"{first} — {last}"


def _signed(value: float, text: str) -> str:
    return f"{UP} +{text}" if value > 0 else f"{DOWN} {MINUS}{text}"


def count_change(current: float, previous: float, *, currency: str | None = None) -> str:
    """ " ▲ +12 (+5,0 %)" against the previous period, the percentage only when there was something
    before; with ``currency`` the difference is money. Whether the previous period had any data at all is
    the caller's to say (``NO_PREVIOUS``)."""
    difference = current - previous
    if difference == 0:
        return "" if current == 0 else UNCHANGED
    amount = format_money(abs(difference), currency) if currency else format_int(round(abs(difference)))
    change = f" {_signed(difference, amount)}"
    if previous:
        percent = difference / previous * 100
        sign = "+" if percent > 0 else MINUS
        change += f" ({sign}{format_decimal(abs(percent))}{NBSP}%)"
    return change


def _rounded_change(current: float | None, previous: float | None, scale: float, unit: str) -> str:
    if current is None or previous is None:
        return ""
    difference = round((current - previous) * scale, 1)
    if difference == 0:
        return UNCHANGED
    return f" {_signed(difference, format_decimal(abs(difference)))}{NBSP}{unit}"


def points_change(current: float | None, previous: float | None) -> str:
    """A change of a share in percentage points: " ▲ +3,1 п.п."."""
    return _rounded_change(current, previous, 100, "п.п.")


def quantity_change(current: float | None, previous: float | None, unit: str) -> str:
    return _rounded_change(current, previous, 1, unit)
