"""Keeping the BI views (migration 0006_bi_views) on the configured time zone.

A migration cannot know the configured zone, so the views read it from the one-row ``bi_settings`` table,
which LeadTrail refreshes from ``settings.timezone`` whenever it opens the database for a command or
``leadtrail run``. PostgreSQL converts with the zone's name (exact, DST included); SQLite has no time zones
and shifts by the zone's current UTC offset (exact for zones without DST, such as Europe/Moscow).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.database import Database
from storage.models import BiSettings

logger = logging.getLogger(__name__)


def utc_offset_minutes(zone: ZoneInfo, now: datetime | None = None) -> int:
    offset = (now or datetime.now(UTC)).astimezone(zone).utcoffset() or timedelta(0)
    return int(offset.total_seconds() // 60)


async def set_bi_zone(conn: AsyncConnection, zone: ZoneInfo, now: datetime | None = None) -> bool:
    """Point the views at ``zone``; writes only when it changed (returns whether it did).

    Read first: every command calls this, and on SQLite even an UPDATE that matches nothing would wait
    for the write lock that ``leadtrail run`` holds while committing.
    """
    offset = utc_offset_minutes(zone, now)
    current = (await conn.execute(select(BiSettings.timezone, BiSettings.utc_offset_minutes))).one_or_none()
    if current is not None and tuple(current) == (zone.key, offset):
        return False
    result = await conn.execute(
        update(BiSettings)
        .where(
            BiSettings.id == 1,
            (BiSettings.timezone != zone.key) | (BiSettings.utc_offset_minutes != offset),
        )
        .values(timezone=zone.key, utc_offset_minutes=offset)
    )
    return bool(result.rowcount)


async def sync_bi_zone(db: Database, zone: ZoneInfo) -> None:
    """Called on start; a failure (a read-only database user, say) only costs the views a stale zone."""
    try:
        async with db.engine.begin() as conn:
            changed = await set_bi_zone(conn, zone)
    except SQLAlchemyError as exc:
        logger.warning("could not set the BI views' time zone: %s", type(exc).__name__)
        return
    if changed:
        logger.info("BI views now count local days in %s", zone.key)
