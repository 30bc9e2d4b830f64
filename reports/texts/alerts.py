"""The alerts' texts: what happened, the numbers behind it, since when, and what to check first; each
rule's condition for ``/alerts``, said from the rule's own thresholds and windows; the ``/alerts`` page.

A verdict's text is plain text that is also valid Telegram HTML: no tags, no bare ``<`` or ``&``, and
every string that came from a source (a channel, a quarantine reason) goes through ``shown``. Texts of
rules that do not fire say where the value stands, for ``/alerts`` and for "resolved" messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING

from reports.followup import FollowupItem
from reports.texts.html import escape, escape_short, shorten, shown
from reports.texts.numbers import (
    MINUS,
    NBSP,
    NONE,
    format_cost,
    format_decimal,
    format_duration,
    format_int,
    format_local,
    format_percent,
    format_quantity,
)
from storage.alert_inputs import (
    ANSWER_WINDOW,
    CONVERSION_HISTORY_DAYS,
    INGEST_WINDOW,
    NO_SHOW_HISTORY_DAYS,
    NO_SHOW_RECENT_DAYS,
    SILENCE_HISTORY_DAYS,
)

if TYPE_CHECKING:
    from reports.alerts import AiBudget, AlertSettings, AlertVerdict

SMALLEST_SHOWN_P = 0.0001

RULE_TITLES = {
    "conversion_drop": "Конверсия диалог → заявка",
    "no_show_spike": "Неявки",
    "slow_ai": "Скорость ответов ИИ",
    "source_silent": "Тишина в канале",
    "ingest_errors": "Ошибки приёма событий",
    "ai_budget": "Бюджет на ИИ",
    "unanswered": "Клиенты без ответа",
}
MONTHS = (
    "январь",
    "февраль",
    "март",
    "апрель",
    "май",
    "июнь",
    "июль",
    "август",
    "сентябрь",
    "октябрь",
    "ноябрь",
    "декабрь",
)

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
    "ai_budget": CHECK_PREFIX + "какие модели обходятся дороже всего (/report → «Стоимость ИИ») и на каких "
    "клиентах (/client); не вырос ли промпт или история диалога, не повторяет ли ассистент вызовы по кругу; "
    "не пора ли перевести простые шаги (классификацию интента) на модель дешевле.",
    "unanswered": "Что сделать: ответьте клиенту или позвоните ему, затем отметьте «Обработано» в карточке.",
}
MESSAGE_PREVIEW = 200


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


def budget_text(
    *,
    firing: bool,
    level: float,
    spent: float,
    budget: float,
    forecast: float | None,
    currency: str,
    month: datetime,
) -> str:
    """A level of the month's AI budget: reached (said once), or where the spend stands."""
    name = f"{MONTHS[month.month - 1]} {month.year}"
    share = format_percent(spent / budget, 0)
    numbers = f"{format_cost(spent, currency)} из {format_cost(budget, currency)} ({share})"
    outlook = f"Прогноз на месяц при нынешнем темпе: {format_cost(forecast, currency)}."
    if not firing:
        return f"✅ Расходы на ИИ за {name}: {numbers}. {outlook}"
    if level >= 1:
        head = f"⛔ Бюджет на ИИ за {name} исчерпан: {numbers}."
    else:
        head = f"💸 Расходы на ИИ за {name} дошли до {format_percent(level, 0)} бюджета: {numbers}."
    return "\n".join((head, outlook, CHECKS["ai_budget"]))


def unanswered_text(item: FollowupItem, now: datetime, zone: tzinfo) -> str:
    """One waiting client: who (name or id), where, how long, the start of their message, what to do."""
    who = escape_short(item.title, 80)
    if item.name and item.user_ids:
        who += f" ({escape_short(item.user_ids[0], 60)})"
    lines = [
        f"💬 Клиент ждёт ответа {format_duration(now - item.since)}: {who}, канал {shown(item.channel)}.",
        f"Написал(а) {format_local(item.since, zone)}.",
    ]
    if item.message:
        lines.append(f"Сообщение: «{escape(shorten(item.message, MESSAGE_PREVIEW))}»")
    lines.append(CHECKS["unanswered"])
    return "\n".join(lines)


def unanswered_summary(waited_minutes: list[float], threshold_minutes: float) -> str:
    """A burst of waiting clients in one message: how many, the longest wait; names are in /followup."""
    longest = format_duration(timedelta(minutes=max(waited_minutes, default=0)))
    return (
        f"💬 Ждут ответа дольше {format_decimal(threshold_minutes, 0)} мин: "
        f"{format_int(len(waited_minutes))} клиентов, дольше всех — {longest}.\n"
        "Весь список с карточками — /followup."
    )


def case_log(verdict: AlertVerdict) -> str:
    """What /alerts keeps of a client's alert: the client's number, never their name or words."""
    waited = "" if verdict.value is None else f", {format_decimal(verdict.value, 0)} мин"
    return f"{RULE_TITLES.get(verdict.rule, verdict.rule)}: клиент #{escape(verdict.scope)}{waited}"


def check_summary(firing: int, moment: str) -> str:
    """The first line of ``leadtrail alerts check``; ``moment`` is already formatted."""
    if not firing:
        return f"Всё в порядке: на {moment} ни одно правило оповещений не срабатывает."
    return f"На {moment} сработали бы оповещения: {format_int(firing)}."


SUBJECT = "LeadTrail: тревога"
PAGE_HEADER = "🚨 <b>Оповещения</b>: правила, пороги и что сейчас"
PAGE_RECENT = "<b>Последние оповещения</b>"
PAGE_NONE_YET = "Пока не было."
MUTED = "«{rule}» заглушено до {until}"
MUTE_BUTTON = "🔕 {rule}"


def resolved(rule: str, scope: str) -> str:
    """The short all-clear after an alert; ``scope`` (a channel) is escaped here."""
    where = f" ({escape(scope)})" if scope else ""
    return f"✅ <b>Снова в норме:</b> {escape(RULE_TITLES.get(rule, rule))}{where}."


def _hours(window: timedelta) -> str:
    hours = window.total_seconds() / 3600
    return "час" if hours == 1 else f"{format_decimal(hours, 0)} ч"


def _budget_condition(budget: AiBudget | None) -> str:
    if budget is None:
        return "бюджет не задан ([ai] monthly_budget)"
    return (
        f"80 % и 100 % бюджета {format_cost(budget.monthly, budget.currency)} за календарный месяц, "
        "каждое по разу"
    )


def thresholds(
    settings: AlertSettings, sla_seconds: float, unanswered_minutes: float, budget: AiBudget | None = None
) -> dict[str, str]:
    """Each rule's condition in plain words, from the rules' own thresholds and windows."""
    return {
        "conversion_drop": f"падение ≥ {format_percent(settings.conversion_drop, 0)} к тем же часам "
        f"за {CONVERSION_HISTORY_DAYS} дней, от {settings.min_clients} клиентов, p < {settings.p_value}",
        "no_show_spike": f"рост ≥ {format_percent(settings.no_show_rise, 0)} за {NO_SHOW_RECENT_DAYS} дней "
        f"к {NO_SHOW_HISTORY_DAYS} дням до, от {settings.no_show_min_bookings} записей",
        "slow_ai": f"за {_hours(ANSWER_WINDOW)} p95 > {sla_seconds:g} с или больше "
        f"{format_percent(settings.slow_ai_over_sla_share, 0)} ответов дольше SLA, "
        f"от {settings.slow_ai_min_answers} ответов",
        "source_silent": f"канал (или все вместе) молчит {settings.silence_hours:g} ч, хотя в эти часы "
        f"писали в {settings.silence_min_days} из {SILENCE_HISTORY_DAYS} дней, "
        f"а шанс такой тишины < {settings.silence_p_value}",
        "ingest_errors": f"от {settings.ingest_errors_per_hour} отклонённых событий "
        f"за {_hours(INGEST_WINDOW)}",
        "ai_budget": _budget_condition(budget),
        "unanswered": f"клиент ждёт ответа дольше {format_decimal(unanswered_minutes, 0)} мин, "
        f"в рабочие часы {settings.working_hours}; больше {settings.unanswered_max_per_check} "
        "за проверку — одной сводкой",
    }


def _verdict_line(verdict: AlertVerdict) -> str:
    state = "🔴 тревога" if verdict.firing else "🟢 норма"
    scope = f" ({escape_short(verdict.scope, 40)})" if verdict.scope else ""
    value = "" if verdict.value is None else f", сейчас {format_decimal(verdict.value, 2)}"
    return f"  {state}{scope}{value}"


def page(
    rules: tuple[str, ...],
    verdicts: list[AlertVerdict],
    conditions: dict[str, str],
    muted: dict[str, datetime],
    recent: list[tuple[datetime, str]],
    zone: tzinfo,
) -> list[str]:
    """The lines of ``/alerts``: each rule with its condition, where it stands, whether it is muted; then
    the last alerts sent."""
    lines = [PAGE_HEADER]
    for rule in rules:
        lines.append(f"\n<b>{escape(RULE_TITLES[rule])}</b> — {escape(conditions[rule])}")
        own = [verdict for verdict in verdicts if verdict.rule == rule]
        if any(verdict.client_id is not None for verdict in own):
            firing = sum(1 for verdict in own if verdict.firing)
            lines.append(f"  {'🔴' if firing else '🟢'} ждут ответа: {format_int(len(own))}")
        else:
            lines.extend(_verdict_line(verdict) for verdict in own)
        if rule in muted:
            lines.append(f"  🔕 заглушено до {format_local(muted[rule], zone)}")
    lines.append(f"\n{PAGE_RECENT}")
    lines.extend(f"{format_local(at, zone)} · {escape_short(text, 300)}" for at, text in recent)
    if not recent:
        lines.append(PAGE_NONE_YET)
    return lines
