"""The salon's Telegram bot: answers with the rule-based dialog and logs everything to LeadTrail.

export SALON_BOT_TOKEN=... LEADTRAIL_URL=http://127.0.0.1:8080 LEADTRAIL_TOKEN=...
python -m examples.salon_assistant.bot
"""

from __future__ import annotations

import asyncio
import os

from aiogram import Bot, Dispatcher, F, Router
from aiogram.types import Message

from bot.sdk import EventClient, LeadTrailTracker
from examples.salon_assistant.dialog import Outcome, answer


async def on_text(message: Message, tracker: LeadTrailTracker) -> None:
    """Answer, tell LeadTrail what the assistant understood, and log the business outcome."""
    reply = answer(message.text or "")
    tracker.annotate(intent=reply.intent, confidence=reply.confidence, scenario="rules-v1")
    if reply.outcome is Outcome.LEAD:
        tracker.log_event("lead_created", lead_id=f"lead_tg_{message.chat.id}_{message.message_id}")
    elif reply.outcome is Outcome.BOOKING:
        tracker.log_event("appointment_booked", service="Мужская стрижка")
    elif reply.outcome is Outcome.REFUSAL:
        tracker.log_event("refusal", reason=reply.reason)
    await message.answer(reply.text)


def create_router() -> Router:
    router = Router(name="salon-assistant")
    router.message.register(on_text, F.text)
    return router


async def main() -> None:
    bot = Bot(os.environ["SALON_BOT_TOKEN"])
    client = EventClient(os.environ["LEADTRAIL_URL"], os.environ["LEADTRAIL_TOKEN"])
    tracker = LeadTrailTracker(client)
    dispatcher = Dispatcher(tracker=tracker)
    dispatcher.include_router(create_router())
    tracker.setup(dispatcher, bot)
    try:
        await dispatcher.start_polling(bot)
    finally:
        await client.aclose()


if __name__ == "__main__":
    asyncio.run(main())
