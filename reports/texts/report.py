"""The owner's report in plain Russian: the summary that ``/report``, the morning report and e-mail send
(and, without tags, what ``leadtrail report`` prints), its sections, and what ``/report`` says around it.

Numbers are rounded only here. Every string that came from a source (reasons, the location, channels,
scenarios) is shortened and escaped, so a message stays valid HTML under Telegram's 4096 characters
whatever the data.
"""

from __future__ import annotations

from reports.ab_test import ScenarioSample, compare
from reports.metrics import AiCost, Report
from reports.periods import Period
from reports.texts.html import escape_short, shown
from reports.texts.numbers import (
    DEFAULT_CURRENCY,
    NBSP,
    NO_PREVIOUS,
    NONE,
    count_change,
    format_amount,
    format_cost,
    format_days,
    format_decimal,
    format_int,
    format_money,
    format_percent,
    format_quantity,
    points_change,
    quantity_change,
)
from storage.followup_items import RESCUE_WINDOW

TOP_REASONS = 5
TOP_MODELS = 3

USAGE = (
    "Не понял период «{value}». Примеры: <code>/report</code>, <code>/report 7d</code>, "
    "<code>/report 2025-01-01..2025-01-31</code>, <code>/report 30d @Баумана</code>."
)
PERIOD_BUTTONS = {"yesterday": "Вчера", "7d": "7 дней", "30d": "30 дней", "month": "Месяц"}
SECTION_BUTTONS = {"ch": "📡 Каналы", "in": "🎯 Интенты", "rr": "↩️ Причины отказов", "ab": "🧪 A/B сценариев"}
SECTION_TITLES = {
    "ch": "<b>📡 По каналам</b>",
    "in": "<b>🎯 Топ интентов ответов ИИ</b>",
    "rr": "<b>↩️ Причины отказов</b>",
    "ab": "<b>🧪 A/B сценариев ассистента</b> (конверсия диалог → заявка)",
}
BY_LOCATION = "<b>📍 По точкам</b>"
SECTION_EMPTY = "Данных за период нет."
AB_NEED_TWO = "Нужно хотя бы два сценария с диалогами: события должны нести поле scenario."
AB_BETTER = "✅ {better} лучше на {points}, и это вряд ли случайность."
AB_SAME = "Сценарии конвертируют одинаково."
AB_NOT_ENOUGH = "⏳ Пока данных мало: нужно ещё примерно {more} диалогов, чтобы разница стала надёжной."


def subject(period: Period) -> str:
    """The e-mail subject of a report."""
    if period.days == 1:
        return f"LeadTrail: отчёт за {period.start_local:%d.%m.%Y}"
    return f"LeadTrail: отчёт за {period.start_local:%d.%m.%Y}–{period.end_local:%d.%m.%Y}"


def _header(report: Report, before: Report) -> list[str]:
    compared = f"в сравнении с {format_days(before.period.start_local, before.period.end_local)}"
    lines = [
        f"<b>📊 Отчёт за {format_days(report.period.start_local, report.period.end_local)}</b>",
        f"<i>{compared}</i>" if before.has_data else f"<i>{compared}: {NO_PREVIOUS}</i>",
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
        ("✂️ Визиты", report.visits, before.visits),
        ("🚫 Неявки", report.no_shows, before.no_shows),
        ("❌ Отмены записей", report.cancellations, before.cancellations),
        ("↩️ Отказы", report.refusals, before.refusals),
        ("💳 Оплаты", report.payments_paid, before.payments_paid),
    )
    compared = before.has_data
    lines = ["", "<b>Объёмы</b>"]
    lines += [
        f"{label}: {format_int(now)}{count_change(now, then) if compared else ''}"
        for label, now, then in counts
    ]
    revenue_change = (
        count_change(report.revenue, before.revenue, currency=DEFAULT_CURRENCY) if compared else ""
    )
    lines.append(f"💰 Выручка: {format_money(report.revenue)}{revenue_change}")
    return lines


def _conversions(report: Report, before: Report) -> list[str]:
    shares = (
        ("Диалог → заявка", report.conversion_dialog_to_lead, before.conversion_dialog_to_lead),
        ("Заявка → запись", report.conversion_lead_to_booking, before.conversion_lead_to_booking),
        ("Пришли от записей", report.visit_rate, before.visit_rate),
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


def _money_change(current: float | None, previous: float | None, currency: str, compared: bool) -> str:
    if not compared or current is None or previous is None:
        return ""
    return count_change(current, previous, currency=currency)


def _names(names: list[str], limit: int = TOP_MODELS) -> str:
    shown_names = ", ".join(shown(name) for name in names[:limit])
    return shown_names + (f" и ещё {format_int(len(names) - limit)}" if len(names) > limit else "")


def _ai_cost(cost: AiCost, before: AiCost, compared: bool) -> list[str]:
    """«Стоимость ИИ»: only when either period had model calls, else it would be a line of zeros."""
    if not (cost.calls or before.calls):
        return []
    currency = cost.currency
    lines = [
        "",
        "<b>Стоимость ИИ</b>",
        f"🧠 Всего: {format_cost(cost.total, currency)}"
        f"{_money_change(cost.total, before.total, currency, compared)}",
        f"На заявку: {format_cost(cost.per_lead, currency)}"
        f"{_money_change(cost.per_lead, before.per_lead, currency, compared)}",
        f"На запись: {format_cost(cost.per_booking, currency)}"
        f"{_money_change(cost.per_booking, before.per_booking, currency, compared)}",
        f"Вызовов модели: {format_int(cost.calls)}, токенов: {format_int(cost.input_tokens)} на входе, "
        f"{format_int(cost.output_tokens)} на выходе",
    ]
    if cost.by_model:
        models = "; ".join(
            f"{shown(model)} — {format_money(amount, currency)}"
            for model, amount in cost.by_model[:TOP_MODELS]
        )
        lines.append(f"По моделям: {models}")
    if cost.unpriced_models:
        lines.append(
            f"⚠️ Без цены (не вошли в сумму): {_names(cost.unpriced_models)} — добавьте их в [[ai.prices]]"
        )
    return lines


def _followup(report: Report) -> list[str]:
    """Measured rescue: shown once someone works the follow-up lists."""
    handled, rescued = report.followup.handled, report.followup.rescued
    if not handled:
        return []
    return [
        "",
        "<b>Списки /followup</b>",
        f"Обработано: {format_int(handled)}, из них записались в течение {RESCUE_WINDOW.days} дней: "
        f"{format_int(rescued)} ({format_percent(rescued / handled)})",
    ]


def summary(report: Report, *, sla_seconds: float) -> str:
    """The summary (HTML) with changes against ``report.previous``."""
    before = report.previous
    if before is None:
        raise ValueError("the report text compares with the previous period; compute it with compute_report")
    lines = [
        *_header(report, before),
        *_volumes(report, before),
        *_conversions(report, before),
        *_speed(report, before, sla_seconds),
        *_ai_cost(report.ai_cost, before.ai_cost, before.has_data),
        *_refusal_reasons(report),
        *_followup(report),
    ]
    return "\n".join(lines)


def _conversion(leads: int, clients: int) -> str:
    return format_percent(leads / clients) if clients else NONE


def channels(report: Report) -> str:
    """The channels section (and the locations, when events carry them)."""
    lines = [SECTION_TITLES["ch"]]
    groups = [("", report.by_channel)]
    if report.by_location:
        groups.append((BY_LOCATION, report.by_location))
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
        lines.append(SECTION_EMPTY)
    return "\n".join(lines)


def _ranked(title: str, pairs: list[tuple[str, int]], total: int) -> str:
    lines = [title]
    for number, (name, count) in enumerate(pairs, start=1):
        share = f" ({format_percent(count / total)})" if total else ""
        lines.append(f"{number}. {escape_short(name, 80)} — {format_int(count)}{share}")
    if not pairs:
        lines.append(SECTION_EMPTY)
    return "\n".join(lines)


def intents(report: Report) -> str:
    return _ranked(SECTION_TITLES["in"], report.top_intents, report.ai_responses)


def refusal_reasons(report: Report) -> str:
    return _ranked(SECTION_TITLES["rr"], report.refusal_reasons, report.refusals)


def _points(value: float) -> str:
    return f"{format_decimal(value * 100)} п.п."


def scenarios(samples: list[ScenarioSample]) -> str:
    """Conversion per scenario; the two largest are compared with a verdict in plain words."""
    lines = [SECTION_TITLES["ab"]]
    if len(samples) < 2:
        return "\n".join([*lines, AB_NEED_TWO])
    for sample in samples:
        lines.append(
            f"• <b>{escape_short(sample.scenario, 40)}</b>: диалогов {format_int(sample.dialogs)}, "
            f"заявок {format_int(sample.leads)} — {format_percent(sample.conversion)}"
        )
    a, b = sorted(samples, key=lambda sample: -sample.dialogs)[:2]
    comparison = compare(a, b)
    if comparison is None:
        return "\n".join([*lines, AB_NEED_TWO])
    better, worse = escape_short(comparison.better.scenario, 40), escape_short(comparison.worse.scenario, 40)
    lines.append(
        f"\nРазница {better} − {worse}: {_points(comparison.difference)} "
        f"(95 % интервал: от {_points(comparison.ci_low)} до {_points(comparison.ci_high)}), "
        f"p = {format_decimal(comparison.p_value, 3)}"
    )
    if comparison.significant:
        lines.append(AB_BETTER.format(better=better, points=_points(comparison.difference)))
    elif comparison.dialogs_needed_per_scenario is None:
        lines.append(AB_SAME)
    else:
        have = min(comparison.better.dialogs, comparison.worse.dialogs)
        more = max(comparison.dialogs_needed_per_scenario - have, 0) * 2
        lines.append(AB_NOT_ENOUGH.format(more=format_int(more)))
    return "\n".join(lines)
