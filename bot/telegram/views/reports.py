"""The buttons under a report: other periods, and its sections (channels, intents, refusal reasons, A/B)."""

from __future__ import annotations

from enum import StrEnum

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from reports.texts import report as texts

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
    for code, label in texts.PERIOD_BUTTONS.items():
        builder.button(
            text=label, callback_data=ReportCallback(action=ReportAction.PERIOD, period=code, location=place)
        )
    for section, label in texts.SECTION_BUTTONS.items():
        builder.button(
            text=label,
            callback_data=ReportCallback(
                action=ReportAction.SECTION, period=period, section=section, location=place
            ),
        )
    builder.adjust(4, 2, 2)
    return builder.as_markup()
