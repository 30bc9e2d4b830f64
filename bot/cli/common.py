"""What the database-only commands share: opening the store and printing JSON."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, tzinfo
from typing import Any

import orjson

from bot.cli.errors import CommandFailed
from bot.settings import Settings
from storage.bi_views import sync_bi_zone
from storage.database import Database, StorageUnavailable, open_database


@asynccontextmanager
async def opened_database(settings: Settings) -> AsyncIterator[Database]:
    try:
        db = await open_database(settings.database.url, settings.database.busy_timeout_ms)
    except StorageUnavailable as exc:
        raise CommandFailed(f"cannot open the database: {exc}") from None
    try:
        await sync_bi_zone(db, settings.tz)
        yield db
    finally:
        await db.close()


def chosen_moment(given: datetime | None, zone: tzinfo) -> datetime:
    """``--now`` as an aware moment (naive is read in the configured zone), else the current time."""
    if given is None:
        return datetime.now(UTC)
    return given if given.tzinfo is not None else given.replace(tzinfo=zone)


def local_iso(moment: datetime, zone: tzinfo) -> str:
    return moment.astimezone(zone).isoformat(timespec="milliseconds")


def print_json(value: Any, zone: tzinfo) -> None:
    def default(item: Any) -> Any:
        if isinstance(item, datetime):
            return local_iso(item, zone)
        raise TypeError

    sys.stdout.write(
        orjson.dumps(
            value, default=default, option=orjson.OPT_INDENT_2 | orjson.OPT_PASSTHROUGH_DATETIME
        ).decode()
        + "\n"
    )
