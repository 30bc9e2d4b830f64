"""What the charts say: titles, axes, legends and captions (plain text drawn into the pictures).

Numbers go through ``reports.texts.numbers`` like everywhere else; a source's strings are cleaned for
the font by the renderer (``reports.charts.plain_text``) before they reach these functions.
"""

from __future__ import annotations

from datetime import date, datetime

from reports.texts.numbers import format_compact, format_int, format_percent
from storage.event_types import EventType

NO_DATA = "Нет данных за период"
WEEKDAY_NAMES = ("Пн", "Вт", "Ср", "Чт", "Пт", "Сб", "Вс")

FUNNEL_TITLE = "Воронка"
FUNNEL_STEPS = ("Клиенты", "Заявки", "Записи", "Визиты", "Оплаты")

TREND_TITLE = "Клиенты, заявки и записи по дням"
TREND_SERIES = ("Клиенты (диалоги)", "Заявки", "Записи")
TREND_AXIS = "Количество"
TREND_CONVERSION = "Конверсия в заявку"

LATENCY_TITLE = "Время ответа ИИ"
LATENCY_AXIS = "Время ответа, с"
LATENCY_COUNT_AXIS = "Ответов"

HEATMAP_TITLE = "Спрос и отказы по часам"
HEATMAP_PANELS = (("Сообщения клиентов", "сообщений"), ("Отказы", "отказов"))
HEATMAP_AXIS = "Час (местное время)"

JOURNEY_LANE_NAMES = {
    EventType.MESSAGE_RECEIVED: "сообщение",
    EventType.ASSISTANT_RESPONSE: "ответ ИИ",
    EventType.LEAD_CREATED: "заявка",
    EventType.APPOINTMENT_BOOKED: "запись",
    EventType.VISIT: "визит",
    EventType.PAYMENT_STATUS: "оплата",
    EventType.NO_SHOW: "неявка",
    EventType.REFUSAL: "отказ",
}
JOURNEY_OTHER_LANE = "другое"


def plural(count: int, one: str, few: str, many: str) -> str:
    """The Russian word form for ``count``: 1 событие, 3 события, 5 событий."""
    tail, tens = count % 10, count % 100
    if tail == 1 and tens != 11:
        return one
    if 2 <= tail <= 4 and not 12 <= tens <= 14:
        return few
    return many


def period_caption(first: date, last: date, location: str | None) -> str:
    if first == last:
        text = f"{first:%d.%m.%Y}"
    elif first.year == last.year:
        text = f"{first:%d.%m}–{last:%d.%m.%Y}"
    else:
        text = f"{first:%d.%m.%Y}–{last:%d.%m.%Y}"
    return f"{text} · {location}" if location else text


def funnel_step(value: int, previous: int | None) -> str:
    """A funnel bar's label, with its share of the step before."""
    label = format_int(value)
    if previous is not None:
        label += f"  ({format_percent(value / previous if previous else None)} от предыдущего)"
    return label


def funnel_no_shows(no_shows: int, bookings: int) -> str:
    return f"неявки: {format_int(no_shows)} ({format_percent(no_shows / bookings if bookings else None)})"


def seconds(value: float) -> str:
    return f"{format_compact(value)} с"


def latency_title(over_share: float | None, sla: float) -> str:
    return f"{LATENCY_TITLE}: {format_percent(over_share)} дольше {seconds(sla)}"


def latency_marks(sla: float, p50: float, p95: float) -> tuple[str, str, str]:
    return f"SLA {seconds(sla)}", f"p50 {seconds(p50)}", f"p95 {seconds(p95)}"


def latency_subtitle(total: int, p50: float, p95: float) -> str:
    return f"Ответов: {format_int(total)} · медиана {seconds(p50)} · 95 % быстрее {seconds(p95)}"


def latency_axis(clipped: int, upper: float) -> str:
    if not clipped:
        return LATENCY_AXIS
    return f"{LATENCY_AXIS} · в последнем столбце ещё {format_int(clipped)} дольше {seconds(upper)}"


def heat_panel_empty(name: str) -> str:
    return f"{name}: не было"


def heat_panel_peak(name: str, weekday: int, hour: int, count: int) -> str:
    peak_hours = f"{hour:02d}:00–{(hour + 1) % 24:02d}:00"
    return f"{name} · пик: {WEEKDAY_NAMES[weekday]} {peak_hours}, {format_int(count)}"


def journey_title(who: str | None, client_id: int) -> str:
    return f"Путь клиента: {who or f'№{client_id}'}"


def journey_subtitle(count: int, first: datetime, last: datetime) -> str:
    events = plural(count, "событие", "события", "событий")
    return f"{format_int(count)} {events} · {first:%d.%m.%Y %H:%M} — {last:%d.%m.%Y %H:%M}"
