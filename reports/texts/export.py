"""What /export says, in Russian (HTML; every value from the owner or the data is escaped by the caller)."""

from __future__ import annotations

from reports.periods import Period
from reports.texts.html import escape_short
from reports.texts.numbers import format_days, format_decimal, format_int

# Where a text is cut to fit an Excel cell (32,767 characters).
XLSX_CUT_MARK = "…[обрезано]"
FORMAT_NAMES = {"xlsx": "Excel (XLSX)", "csv": "CSV для Excel", "parquet": "Parquet"}

EXPORT_USAGE = (
    "Не понял «{value}». Примеры: <code>/export</code> (вчера и 7 дней до него, Excel), "
    "<code>/export 30d</code>, <code>/export 2025-01-01..2025-01-31 csv</code>, "
    "<code>/export month @Баумана</code>."
)
EXPORT_CAPTION = "📦 Выгрузка событий за {period}\nСобытий: {events}\nФормат: {fmt}"
EXPORT_LOCATION = "\n📍 Точка: {location}"
EXPORT_EMPTY = "За {period} событий нет — выгружать нечего."
EXPORT_TOO_BIG = (
    "Выгрузка за {period} больше, чем Telegram разрешает боту отправить ({limit}).\n"
    "Выберите период короче или выгрузите на сервере командой:\n"
    "<code>leadtrail export --from {start} --to {end} --out events.{ext}</code>"
)


def format_size(size_bytes: int) -> str:
    """Bytes the way a person reads them: 850 КБ, 51,2 МБ."""
    if size_bytes < 1024 * 1024:
        return f"{format_decimal(size_bytes / 1024, 1)} КБ"
    return f"{format_decimal(size_bytes / (1024 * 1024), 1)} МБ"


def caption(period: Period, events: int, fmt: str, location: str | None) -> str:
    """The caption of the exported file."""
    text = EXPORT_CAPTION.format(
        period=format_days(period.start_local, period.end_local),
        events=format_int(events),
        fmt=FORMAT_NAMES[fmt],
    )
    if location is not None:
        text += EXPORT_LOCATION.format(location=escape_short(location, 200))
    return text


def period_label(period: Period) -> str:
    return format_days(period.start_local, period.end_local)
