"""The assistant's dialog logic: rule-based intents, no network LLM needed.

Pure functions, so the bot, the tests and anyone reading the example see the same decisions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


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


_EVENING = re.compile(r"\b(вечер\w*|после\s+(1[7-9]|2[0-1])|в\s+(1[8-9]|2[0-1])[:.]?\d*)\b")
_RULES: tuple[tuple[re.Pattern[str], Reply], ...] = (
    (
        re.compile(r"дорог|не буду|передумал|отмен"),
        Reply(
            "Жаль! Если передумаете — напишите, подберём время.",
            "refusal.other",
            0.81,
            Outcome.REFUSAL,
            "передумал",
        ),
    ),
    (
        re.compile(r"сколько|цен|стоит|прайс"),
        Reply("Мужская стрижка — 1 500 ₽, с бородой — 2 200 ₽. Записать вас?", "price.question", 0.93),
    ),
    (
        re.compile(r"где|адрес|как добраться|находитесь"),
        Reply("Мы на Баумана, 44 и на Ямашева, 10. Работаем с 10:00 до 21:00.", "address.question", 0.95),
    ),
    (
        re.compile(r"запис|стрижк|свободн|время|окошк"),
        Reply(
            "Могу записать завтра на 12:00 или 15:30. Как вам удобнее?", "booking.request", 0.9, Outcome.LEAD
        ),
    ),
    (
        re.compile(r"\b(да|давайте|подходит|ок|хорошо)\b"),
        Reply("Записал вас! Напомним за 2 часа до визита.", "booking.confirm", 0.88, Outcome.BOOKING),
    ),
)
_EVENING_FULL = Reply(
    "К сожалению, вечером всё занято. Есть завтра в 12:00 — подойдёт?",
    "booking.evening",
    0.86,
    Outcome.REFUSAL,
    "нет свободных вечерних слотов",
)
_FALLBACK = Reply("Я помогу записаться, подскажу цены и адрес. Что вас интересует?", "smalltalk", 0.55)


def answer(text: str) -> Reply:
    """The reply to one client message; an evening request meets a full evening, as in the seed's case."""
    lowered = text.lower()
    if _EVENING.search(lowered):
        return _EVENING_FULL
    for pattern, reply in _RULES:
        if pattern.search(lowered):
            return reply
    return _FALLBACK
