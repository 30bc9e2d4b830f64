"""The owner's report in plain Russian: the HTML that ``/report`` sends and, without tags, what
``leadtrail report`` prints.

Numbers are rounded only here. Every string that came from a source (reasons, the location) is shortened
and escaped, so the message stays valid HTML and under Telegram's 4096 characters whatever the data.
"""

from __future__ import annotations

import html
import re
from datetime import date

from bot.formatting import NBSP, format_decimal, format_int
from reports.metrics import Report
from reports.periods import Period

TELEGRAM_LIMIT = 4096
TOP_REASONS = 5
SHOWN_CHARS = 60
NONE = "—"
MINUS = "−"
UP, DOWN = "▲", "▼"
_TAG = re.compile(r"<[^>]+>")


def format_percent(share: float | None) -> str:
    """0.529 → "52,9 %"; None (a ratio with nothing to divide by) → "—"."""
    return NONE if share is None else f"{format_decimal(share * 100)}{NBSP}%"


def format_amount(value: float) -> str:
    """Whole amounts without kopecks, others with two digits: 45 600 and 1 234,50."""
    return format_int(round(value)) if value == round(value) else format_decimal(value, 2)


def format_quantity(value: float | None, unit: str) -> str:
    return NONE if value is None else f"{format_decimal(value)}{NBSP}{unit}"


def shown(text: str) -> str:
    """A source's string made safe for the message: shortened, then HTML-escaped."""
    short = text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"
    return html.escape(short)


def _signed(value: float, text: str) -> str:
    return f"{UP} +{text}" if value > 0 else f"{DOWN} {MINUS}{text}"


def count_change(current: float, previous: float, *, money: bool = False) -> str:
    """ " ▲ +12 (+5,0 %)" against the previous period; the percentage only when there was something before."""
    difference = current - previous
    if difference == 0:
        return "" if current == 0 else " = без изменений"
    amount = format_amount(abs(difference)) if money else format_int(round(abs(difference)))
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
        return " = без изменений"
    return f" {_signed(difference, format_decimal(abs(difference)))}{NBSP}{unit}"


def points_change(current: float | None, previous: float | None) -> str:
    """A change of a share in percentage points: " ▲ +3,1 п.п."."""
    return _rounded_change(current, previous, 100, "п.п.")


def quantity_change(current: float | None, previous: float | None, unit: str) -> str:
    return _rounded_change(current, previous, 1, unit)


def _days(start: date, end: date) -> str:
    first, last = start.strftime("%d.%m.%Y"), end.strftime("%d.%m.%Y")
    return first if start == end else f"{first} — {last}"


def format_days(start: date, end: date) -> str:
    """The period as the report's header shows it, for other messages about a period (/export)."""
    return _days(start, end)


def _header(report: Report, before: Report) -> list[str]:
    lines = [
        f"<b>📊 Отчёт за {_days(report.period.start_local, report.period.end_local)}</b>",
        f"<i>в сравнении с {_days(before.period.start_local, before.period.end_local)}</i>",
    ]
    if report.location is not None:
        lines.append(f"📍 Точка: {shown(report.location)}")
    return lines


def _volumes(report: Report, before: Report) -> list[str]:
    counts = (
        ("👥 Клиенты", report.clients, before.clients),
        ("💬 Сообщения", report.messages, before.messages),
        ("🤖 Ответы ИИ", report.ai_responses, before.ai_responses),
        ("📝 Заявки", report.leads, before.leads),
        ("📅 Записи", report.bookings, before.bookings),
        ("🚫 Неявки", report.no_shows, before.no_shows),
        ("↩️ Отказы", report.refusals, before.refusals),
        ("💳 Оплаты", report.payments_paid, before.payments_paid),
    )
    lines = ["", "<b>Объёмы</b>"]
    lines += [f"{label}: {format_int(now)}{count_change(now, then)}" for label, now, then in counts]
    revenue_change = count_change(report.revenue, before.revenue, money=True)
    lines.append(f"💰 Выручка: {format_amount(report.revenue)}{revenue_change}")
    return lines


def _conversions(report: Report, before: Report) -> list[str]:
    shares = (
        ("Диалог → заявка", report.conversion_dialog_to_lead, before.conversion_dialog_to_lead),
        ("Заявка → запись", report.conversion_lead_to_booking, before.conversion_lead_to_booking),
        ("Неявки от записей", report.no_show_rate, before.no_show_rate),
        ("Повторные записи", report.repeat_booking_share, before.repeat_booking_share),
    )
    lines = ["", "<b>Конверсия</b>"]
    lines += [f"{label}: {format_percent(now)}{points_change(now, then)}" for label, now, then in shares]
    return lines


def _speed(report: Report, before: Report, sla_seconds: float) -> list[str]:
    answers, answers_before = report.ai_response_seconds, before.ai_response_seconds
    hours = report.first_message_to_booking_hours_median
    hours_before = before.first_message_to_booking_hours_median
    return [
        "",
        "<b>Скорость</b>",
        f"Ответ ИИ, медиана: {format_quantity(answers.p50, 'с')}"
        f"{quantity_change(answers.p50, answers_before.p50, 'с')}",
        f"Ответ ИИ, p95: {format_quantity(answers.p95, 'с')}"
        f"{quantity_change(answers.p95, answers_before.p95, 'с')}",
        f"Дольше SLA ({format_amount(sla_seconds)}{NBSP}с): {format_percent(answers.over_sla_share)}"
        f"{points_change(answers.over_sla_share, answers_before.over_sla_share)}",
        f"От первого сообщения до записи, медиана: {format_quantity(hours, 'ч')}"
        f"{quantity_change(hours, hours_before, 'ч')}",
    ]


def _refusal_reasons(report: Report) -> list[str]:
    lines = ["", "<b>Причины отказов</b>"]
    if not report.refusal_reasons:
        return [*lines, "Отказов не было."]
    for number, (reason, count) in enumerate(report.refusal_reasons[:TOP_REASONS], start=1):
        share = format_percent(count / report.refusals) if report.refusals else NONE
        lines.append(f"{number}. {shown(reason)} — {format_int(count)} ({share})")
    return lines


def render_report_text(report: Report, *, sla_seconds: float) -> str:
    """The summary (HTML) with changes against ``report.previous``."""
    before = report.previous
    if before is None:
        raise ValueError("the report text compares with the previous period; compute it with compute_report")
    lines = [
        *_header(report, before),
        *_volumes(report, before),
        *_conversions(report, before),
        *_speed(report, before, sla_seconds),
        *_refusal_reasons(report),
    ]
    return "\n".join(lines)


def plain_text(html_text: str) -> str:
    """A message's HTML as the terminal shows it: tags dropped, entities back to characters."""
    return html.unescape(_TAG.sub("", html_text))


def report_subject(period: Period) -> str:
    """The e-mail subject of a report."""
    if period.days == 1:
        return f"LeadTrail: отчёт за {period.start_local:%d.%m.%Y}"
    return f"LeadTrail: отчёт за {period.start_local:%d.%m.%Y}–{period.end_local:%d.%m.%Y}"
