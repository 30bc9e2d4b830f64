"""The LeadTrail bot in-process against the fake Bot API: the real dispatcher, link and storage."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.ingestion.http_app import ServiceState
from bot.runtime.service import create_writer
from bot.runtime.telegram_link import TelegramLink
from bot.settings import Settings
from bot.telegram.dispatcher import build_dispatcher
from storage.database import Database, open_database
from storage.writer import EventWriter
from tests.fake_bot_api import FakeBotAPI

BOT_TOKEN = "123456:TEST-token_abcdefghijklmnopqrstu"
OWNER, STRANGER = 1001, 2002


@dataclass
class BotHarness:
    api: FakeBotAPI
    db: Database
    writer: EventWriter
    settings: Settings


@asynccontextmanager
async def bot_harness(
    tmp_path: Path, sections: dict[str, Any] | None = None, **telegram: Any
) -> AsyncIterator[BotHarness]:
    """The bot against the fake Bot API; ``telegram`` keys add to its section, ``sections`` are others."""
    async with FakeBotAPI() as api:
        settings = Settings(
            database={"url": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"},
            telegram={"token": BOT_TOKEN, "api_server": api.base_url, "owners": [OWNER], **telegram},
            **(sections or {}),
        )
        db = await open_database(settings.database.url)
        writer = create_writer(settings, db)
        await writer.start()
        link = TelegramLink(settings, build_dispatcher(settings, db, writer), ServiceState())
        link.start()
        try:
            await api.wait_for("getUpdates", timeout=15)
            yield BotHarness(api, db, writer, settings)
        finally:
            await link.stop()
            await writer.close()
            await db.close()
