"""The alerts' Russian texts: what happened, the numbers behind it, since when, and what to check first.

Plain text that is also valid Telegram HTML: no tags, no bare ``<`` or ``&``, and every string that came
from a source (a channel, a quarantine reason) goes through ``shown``. Texts of rules that do not fire
say where the value stands, for ``/alerts`` and for "resolved" messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo

from bot.formatting import NBSP, format_decimal, format_int, format_local
from reports.report_text import MINUS, NONE, format_percent, format_quantity, shown

SMALLEST_SHOWN_P = 0.0001

RULE_TITLES = {
    "conversion_drop": "Конверсия диалог → заявка",
    "no_show_spike": "Неявки",
    "slow_ai": "Скорость ответов ИИ",
    "source_silent": "Тишина в канале",
    "ingest_errors": "Ошибки приёма событий",
}

CHECK_PREFIX = "Что проверить первым: "
CHECKS = {
    "conversion_drop": CHECK_PREFIX
    + "откройте несколько последних диалогов (/client) — доводит ли ассистент клиента до заявки; "
    "не меняли ли промпт, сценарий или цены, создаются ли заявки в CRM.",
    "no_show_spike": CHECK_PREFIX
    + "уходят ли клиентам напоминания и подтверждения записи, не сбилось ли время записей в CRM, "
    "не записывает ли ассистент на занятые или несуществующие слоты.",
    "slow_ai": CHECK_PREFIX + "задержки и лимиты API языковой модели, нагрузку на сервер ассистента, "
    "не вырос ли промпт или история диалога.",
    "ingest_errors": CHECK_PREFIX + "leadtrail quarantine — что именно и от какого источника отклонено; "
    "чаще всего это формат timestamp или поле, изменившееся после обновления источника.",
}


@dataclass(frozen=True, slots=True)
class RateWording:
    """How one rate rule speaks; ``{recent_days}`` and ``{history_days}`` are filled in by the rule."""

    rule: str
    subject: str
    fell: str
    totals: str
    hits: str
    recent_window: str
    recent_short: str
    baseline_window: str


CONVERSION = RateWording(
    rule="conversion_drop",
    subject="Конверсия из диалога в заявку",
    fell="📉 Конверсия из диалога в заявку упала",
    totals="Клиентов",
    hits="из них с заявкой",
    recent_window="за последние 24 часа",
    recent_short="за сутки",
    baseline_window="в те же часы {history_days} дней до этого",
)
NO_SHOWS = RateWording(
    rule="no_show_spike",
    subject="Доля неявок",
    fell="🚫 Неявок стало больше",
    totals="Записей",
    hits="неявок",
    recent_window="за последние {recent_days} дней",
    recent_short="за {recent_days} дней",
    baseline_window="за {history_days} дней до этого",
)


def _channel_name(channel: str) -> str:
    """The subject of a silence sentence; "" is all channels together (reports.alerts.ALL_CHANNELS)."""
    return f"Канал {shown(channel)}" if channel else "Все каналы вместе"


def silence_check(channel: str) -> str:
    whose = f"ассистент канала {shown(channel)}" if channel else "ассистент (его процесс и сервер)"
    return (
        f"{CHECK_PREFIX}работает ли {whose} и отвечает ли клиентам; "
        "не сменился ли токен LeadTrail (ответы 401 в его журнале), доступен ли адрес LeadTrail; "
        "для событий через Telegram — состоит ли бот в канале."
    )


def format_p_value(p_value: float | None) -> str:
    if p_value is None:
        return f"p = {NONE}"
    if p_value < SMALLEST_SHOWN_P:
        return f"p менее {format_decimal(SMALLEST_SHOWN_P, 4)}"
    return f"p = {format_decimal(p_value, 4)}"


def _relative_change(value: float, baseline: float) -> str:
    """ " (−75,0 %)" of the baseline; nothing when it rounds to zero."""
    percent = round((value - baseline) / baseline * 100, 1)
    if percent == 0:
        return ""
    sign = "+" if percent > 0 else MINUS
    return f" ({sign}{format_decimal(abs(percent))}{NBSP}%)"


def _period(since: datetime, zone: tzinfo) -> str:
    return f"Период: с {format_local(since, zone)} по сейчас."


def rate_text(
    wording: RateWording,
    *,
    firing: bool,
    enough: bool,
    recent: tuple[int, int],
    baseline: tuple[int, int],
    days: tuple[int, int],
    p_value: float | None,
    minimum: int,
    since: datetime,
    zone: tzinfo,
) -> str:
    """A rate rule's verdict; ``recent`` and ``baseline`` are (hits, total), ``days`` the two windows."""
    windows = {"recent_days": days[0], "history_days": days[1]}
    recent_short = wording.recent_short.format(**windows)
    baseline_window = wording.baseline_window.format(**windows)
    totals = f"{wording.totals} {recent_short}"
    if not enough:
        return (
            f"✅ {wording.subject}: мало данных для вывода — {totals.lower()}: {format_int(recent[1])}, "
            f"{baseline_window}: {format_int(baseline[1])} (нужно от {format_int(minimum)} в каждом)."
        )
    value, before = recent[0] / recent[1], baseline[0] / baseline[1]
    comparison = (
        f"{format_percent(value)} {wording.recent_window.format(**windows)} "
        f"против {format_percent(before)} {baseline_window}"
    )
    if before:
        comparison += _relative_change(value, before)
    numbers = (
        f"{totals}: {format_int(recent[1])}, {wording.hits}: {format_int(recent[0])}; "
        f"{baseline_window}: {format_int(baseline[1])} и {format_int(baseline[0])}."
    )
    if not firing:
        return "\n".join(
            (
                f"✅ {wording.subject} без значимых изменений: {comparison}.",
                f"{numbers} {format_p_value(p_value)}.",
            )
        )
    return "\n".join(
        (
            f"{wording.fell}: {comparison}.",
            f"{numbers} Вероятность, что это случайность: {format_p_value(p_value)}.",
            _period(since, zone),
            CHECKS[wording.rule],
        )
    )


def slow_ai_text(
    *,
    firing: bool,
    enough: bool,
    answers: int,
    over: int,
    p95: float | None,
    sla_seconds: float,
    min_answers: int,
    since: datetime,
    zone: tzinfo,
) -> str:
    if not enough:
        return (
            f"✅ Скорость ответов ИИ: за последний час ответов {format_int(answers)} — мало для вывода "
            f"(нужно от {format_int(min_answers)})."
        )
    numbers = (
        f"p95 времени ответа {format_quantity(p95, 'с')} при норме {format_quantity(sla_seconds, 'с')}; "
        f"дольше нормы {format_int(over)} из {format_int(answers)} ответов ({format_percent(over / answers)})"
    )
    if not firing:
        return f"✅ Скорость ответов ИИ в норме: {numbers} за последний час."
    return "\n".join((f"🐢 ИИ отвечает медленно: {numbers}.", _period(since, zone), CHECKS["slow_ai"]))


def silence_text(
    *,
    firing: bool,
    channel: str,
    silent_hours: float,
    active_days: int,
    history_days: int,
    usual_clients: float,
    p_value: float,
    last_event_at: datetime,
    zone: tzinfo,
) -> str:
    name = _channel_name(channel)
    last = f"последнее событие {format_local(last_event_at, zone)}"
    usual = (
        f"в эти часы клиентов в среднем {format_decimal(usual_clients)}, события были в {active_days} "
        f"из {history_days} предыдущих дней"
    )
    if not firing:
        return f"✅ {name}: {last}; обычно {usual}."
    return "\n".join(
        (
            f"🔇 {name}: тишина {format_quantity(silent_hours, 'ч')}, {last}.",
            f"Обычно {usual}; такая тишина случайно — {format_p_value(p_value)}.",
            "Похоже, ассистент или отправка событий остановились.",
            silence_check(channel),
        )
    )


def ingest_errors_text(
    *,
    firing: bool,
    count: int,
    threshold: int,
    first_at: datetime | None,
    latest_source: str | None,
    latest_reason: str | None,
    zone: tzinfo,
) -> str:
    counted = f"за последний час отклонено событий: {format_int(count)} (порог {format_int(threshold)})"
    if not firing:
        return f"✅ Ошибки приёма: {counted}."
    lines = [f"🧯 Источники присылают события с ошибками: {counted}."]
    if first_at is not None:
        lines.append(f"Первое из них: {format_local(first_at, zone)}.")
    if latest_reason is not None:
        source = f" (источник {shown(latest_source)})" if latest_source else ""
        lines.append(f"Последняя ошибка{source}: {shown(latest_reason)}.")
    lines.append(CHECKS["ingest_errors"])
    return "\n".join(lines)


def check_summary(firing: int, moment: str) -> str:
    """The first line of ``leadtrail alerts check``; ``moment`` is already formatted."""
    if not firing:
        return f"Всё в порядке: на {moment} ни одно правило оповещений не срабатывает."
    return f"На {moment} сработали бы оповещения: {format_int(firing)}."
