"""The salon's answers; each tells LeadTrail what the assistant understood and what came of it."""

from __future__ import annotations

import re

from aiogram import F, Router
from aiogram.types import Message

from leadtrail_sdk import LeadTrailTracker

PHONE = re.compile(r"(\+7|\b8)[\s(-]*\d{3}[\s)-]*\d{3}[\s-]*\d{2}[\s-]*\d{2}\b")

router = Router(name="salon")


@router.message(F.text)
async def on_text(message: Message, tracker: LeadTrailTracker) -> None:
    """A phone number in the message makes a lead; anything else is asked for one."""
    phone = PHONE.search(message.text or "")
    if phone is None:
        tracker.annotate(intent="booking.request", confidence=0.6)
        await message.answer("Здравствуйте! Оставьте, пожалуйста, телефон — администратор подберёт время.")
        return
    tracker.annotate(intent="contact.provided", confidence=0.97)
    lead_id = f"lead_tg_{message.chat.id}_{message.message_id}"
    tracker.log_event("lead_created", lead_id=lead_id, phone=phone[0])
    await message.answer("Спасибо! Администратор перезвонит вам в течение 10 минут.")
