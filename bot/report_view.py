"""The report's sections in Telegram HTML (channels, intents, refusal reasons, A/B) and its buttons."""

from __future__ import annotations

from enum import StrEnum

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot import texts
from bot.formatting import format_decimal, format_int
from bot.telegram_text import escape_short
from reports.ab_test import ScenarioSample, compare
from reports.metrics import Report
from reports.report_text import format_percent

PERIOD_BUTTONS = (("yesterday", "Вчера"), ("7d", "7 дней"), ("30d", "30 дней"), ("month", "Месяц"))
DEFAULT_PERIOD = "default"
# Callback data is at most 64 bytes; a longer location is not carried by the buttons.
MAX_LOCATION_BYTES = 24


class ReportAction(StrEnum):
    PERIOD = "p"
    SECTION = "s"


class Section(StrEnum):
    CHANNELS = "ch"
    INTENTS = "in"
    REASONS = "rr"
    AB = "ab"


class ReportCallback(CallbackData, prefix="rp1"):
    action: ReportAction
    period: str
    section: str = ""
    location: str = ""


def report_keyboard(period: str, location: str | None) -> InlineKeyboardMarkup:
    place = location if location and len(location.encode()) <= MAX_LOCATION_BYTES else ""
    builder = InlineKeyboardBuilder()
    for code, label in PERIOD_BUTTONS:
        builder.button(
            text=label, callback_data=ReportCallback(action=ReportAction.PERIOD, period=code, location=place)
        )
    for section, label in texts.REPORT_SECTIONS.items():
        builder.button(
            text=label,
            callback_data=ReportCallback(
                action=ReportAction.SECTION, period=period, section=section, location=place
            ),
        )
    builder.adjust(4, 2, 2)
    return builder.as_markup()


def _conversion(leads: int, clients: int) -> str:
    return format_percent(leads / clients) if clients else "—"


def render_channels(report: Report) -> str:
    lines = [texts.SECTION_TITLES[Section.CHANNELS]]
    groups = [("", report.by_channel)]
    if report.by_location:
        groups.append((texts.BY_LOCATION, report.by_location))
    for heading, breakdown in groups:
        if heading:
            lines.append(f"\n{heading}")
        for name, counts in sorted(breakdown.items(), key=lambda item: -item[1].clients):
            lines.append(
                f"• <b>{escape_short(name, 40)}</b>: клиентов {format_int(counts.clients)}, "
                f"заявок {format_int(counts.leads)}, записей {format_int(counts.bookings)} · "
                f"диалог → заявка {_conversion(counts.leads, counts.clients)}"
            )
    if len(lines) == 1:
        lines.append(texts.SECTION_EMPTY)
    return "\n".join(lines)


def _ranked(title: str, pairs: list[tuple[str, int]], total: int) -> str:
    lines = [title]
    for number, (name, count) in enumerate(pairs, start=1):
        share = f" ({format_percent(count / total)})" if total else ""
        lines.append(f"{number}. {escape_short(name, 80)} — {format_int(count)}{share}")
    if not pairs:
        lines.append(texts.SECTION_EMPTY)
    return "\n".join(lines)


def render_intents(report: Report) -> str:
    return _ranked(texts.SECTION_TITLES[Section.INTENTS], report.top_intents, report.ai_responses)


def render_reasons(report: Report) -> str:
    return _ranked(texts.SECTION_TITLES[Section.REASONS], report.refusal_reasons, report.refusals)


def _points(value: float) -> str:
    return f"{format_decimal(value * 100)} п.п."


def render_ab(samples: list[ScenarioSample]) -> str:
    """Conversion per scenario; the two largest are compared with a verdict in plain words."""
    lines = [texts.SECTION_TITLES[Section.AB]]
    if len(samples) < 2:
        return "\n".join([*lines, texts.AB_NEED_TWO])
    for sample in samples:
        lines.append(
            f"• <b>{escape_short(sample.scenario, 40)}</b>: диалогов {format_int(sample.dialogs)}, "
            f"заявок {format_int(sample.leads)} — {format_percent(sample.conversion)}"
        )
    a, b = sorted(samples, key=lambda sample: -sample.dialogs)[:2]
    comparison = compare(a, b)
    if comparison is None:
        return "\n".join([*lines, texts.AB_NEED_TWO])
    better, worse = escape_short(comparison.better.scenario, 40), escape_short(comparison.worse.scenario, 40)
    lines.append(
        f"\nРазница {better} − {worse}: {_points(comparison.difference)} "
        f"(95 % интервал: от {_points(comparison.ci_low)} до {_points(comparison.ci_high)}), "
        f"p = {format_decimal(comparison.p_value, 3)}"
    )
    if comparison.significant:
        lines.append(texts.AB_BETTER.format(better=better, points=_points(comparison.difference)))
    elif comparison.dialogs_needed_per_scenario is None:
        lines.append(texts.AB_SAME)
    else:
        have = min(comparison.better.dialogs, comparison.worse.dialogs)
        more = max(comparison.dialogs_needed_per_scenario - have, 0) * 2
        lines.append(texts.AB_NOT_ENOUGH.format(more=format_int(more)))
    return "\n".join(lines)
