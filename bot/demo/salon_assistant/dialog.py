"""The assistant's dialog logic: rule-based intents, no network LLM needed.

Pure functions, so the bot, the tests, ``leadtrail demo`` (which writes its Telegram clients' messages
to the bot) and anyone reading the example see the same decisions. A lead is created when the client
leaves a phone number, a booking when they accept the offered slot (tomorrow at noon: the evenings are
full, as in the seed's case), a refusal when they give up, with the reason they name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo


class Outcome(StrEnum):
    NONE = "none"
    LEAD = "lead"
    BOOKING = "booking"
    REFUSAL = "refusal"


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    intent: str
    confidence: float
    outcome: Outcome = Outcome.NONE
    reason: str | None = None


SALON_ZONE = ZoneInfo("Europe/Moscow")  # Kazan keeps Moscow time
OFFERED_SLOT = time(12, 0)
BOOKED_SERVICE = "Мужская стрижка"
EVENING_SLOTS_REASON = "нет свободных вечерних слотов"
SLOW_ANSWER_REASON = "не устроило время ожидания ответа"

_EVENING = re.compile(
    r"\b(вечер\w*|после\s+(1[7-9]|2[0-1]|работы)|[вк]\s+(1[8-9]|2[0-1])[:.]?\d*|до\s+2[01])\b"
)
_PHONE = re.compile(r"(\+7|\b8)[\s(-]*\d{3}[\s)-]*\d{3}[\s-]*\d{2}[\s-]*\d{2}\b")
_GIVE_UP = re.compile(r"дорог|не буду|не надо|передумал|отмен|другое место|далеко")
# What the client names as the reason, first match wins; anything else is "передумал".
_REASONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (_EVENING, EVENING_SLOTS_REASON),
    (re.compile(r"дорог"), "дорого"),
    (re.compile(r"далеко"), "далеко"),
    (re.compile(r"другое место"), "записался в другое место"),
    (re.compile(r"долго"), SLOW_ANSWER_REASON),
)
_RULES: tuple[tuple[re.Pattern[str], Reply], ...] = (
    (
        _PHONE,
        Reply("Спасибо! Записать вас на завтра, на 12:00?", "contact.provided", 0.97, Outcome.LEAD),
    ),
    (
        _EVENING,
        Reply("К сожалению, вечером всё занято. Есть завтра в 12:00 — подойдёт?", "booking.evening", 0.86),
    ),
    (
        re.compile(r"сколько|цен|стоит|прайс|почём|почем"),
        Reply("Мужская стрижка — 1 500 ₽, с бородой — 2 200 ₽. Записать вас?", "price.question", 0.93),
    ),
    (
        re.compile(r"где|адрес|как добраться|находитесь|парковк"),
        Reply("Мы на Баумана, 44 и на Ямашева, 10. Работаем с 10:00 до 21:00.", "address.question", 0.95),
    ),
    (
        re.compile(r"запис|стрижк|свободн|время|окошк|окно"),
        Reply(
            "Могу записать завтра на 12:00 или 15:30. Оставьте, пожалуйста, имя и телефон.",
            "booking.request",
            0.9,
        ),
    ),
    (
        re.compile(r"\b(да|давайте|подходит|ок|хорошо)\b"),
        Reply("Записал вас! Напомним за 2 часа до визита.", "booking.confirm", 0.88, Outcome.BOOKING),
    ),
)
_FALLBACK = Reply("Я помогу записаться, подскажу цены и адрес. Что вас интересует?", "smalltalk", 0.55)


def answer(text: str) -> Reply:
    """The reply to one client message: giving up first, then a phone number, then the topic rules."""
    lowered = text.lower()
    if _GIVE_UP.search(lowered):
        reason = next((reason for pattern, reason in _REASONS if pattern.search(lowered)), "передумал")
        return Reply(
            "Жаль! Если передумаете — напишите, подберём время.", "refusal", 0.81, Outcome.REFUSAL, reason
        )
    for pattern, reply in _RULES:
        if pattern.search(lowered):
            return reply
    return _FALLBACK


def phone_in(text: str) -> str | None:
    """The phone number the client left, as written; None when there is none."""
    found = _PHONE.search(text)
    return found.group(0) if found else None


def booked_slot(asked_at: datetime) -> datetime:
    """The visit a confirmation books: the day after the client's message, at noon salon time."""
    day = asked_at.astimezone(SALON_ZONE).date() + timedelta(days=1)
    return datetime.combine(day, OFFERED_SLOT, tzinfo=SALON_ZONE)


def lead_id(chat_id: int, message_id: int) -> str:
    """The lead's id: the chat and the message that left the contact, so it is unique and traceable."""
    return f"lead_tg_{chat_id}_{message_id}"


def record_id(chat_id: int, message_id: int) -> int:
    """The YCLIENTS record the booking made: the demo's stand-in for the id YCLIENTS' API returns when the
    assistant books (a salon's assistant logs the real one), made of the chat and the message that
    accepted the slot, so the demo's YCLIENTS knows it too."""
    return chat_id * 10_000 + message_id
