"""``python -m bot``: the salon's bot with LeadTrail's tracker registered.

SALON_BOT_TOKEN=... LEADTRAIL_URL=http://127.0.0.1:8080 LEADTRAIL_TOKEN=... python -m bot
"""

from __future__ import annotations

import asyncio
import os

from aiogram import Bot, Dispatcher

from leadtrail_sdk import EventClient, LeadTrailTracker

from .handlers import router


async def main() -> None:
    bot = Bot(os.environ["SALON_BOT_TOKEN"])
    client = EventClient(os.environ["LEADTRAIL_URL"], os.environ["LEADTRAIL_TOKEN"])
    dispatcher = Dispatcher()
    tracker = LeadTrailTracker(client)
    tracker.setup(dispatcher, bot)
    dispatcher["tracker"] = tracker
    dispatcher.include_router(router)
    try:
        await dispatcher.start_polling(bot)
    finally:
        await client.aclose()


if __name__ == "__main__":
    asyncio.run(main())
