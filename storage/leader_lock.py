"""Which ``leadtrail run`` process leads: a PostgreSQL session advisory lock, held on its own connection.

The lock lives exactly as long as the database session that took it, so a leader that dies (even by
SIGKILL) lets it go when its connection closes, and a standby's next try wins. SQLite serves one process
by design, so there the caller is always the leader.
"""

from __future__ import annotations

import hashlib
import logging

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.database import Database

logger = logging.getLogger(__name__)


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_*`` (locks are per database, so per LeadTrail install)."""
    return int.from_bytes(hashlib.sha256(f"leadtrail:{name}".encode()).digest()[:8], "big", signed=True)


SCHEDULER_LOCK_KEY = advisory_key("scheduler-leader")


class LeaderLock:
    def __init__(self, db: Database, key: int = SCHEDULER_LOCK_KEY) -> None:
        self._db = db
        self._key = key
        self._conn: AsyncConnection | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None or self._db.is_sqlite

    async def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; True while this process holds it."""
        if self._db.is_sqlite:
            return True
        if self._conn is not None:
            return await self.still_held()
        try:
            conn = await self._db.engine.connect()
        except (SQLAlchemyError, OSError):
            return False
        try:
            won = bool(
                (await conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key})).scalar()
            )
            await conn.commit()
        except (SQLAlchemyError, OSError):
            await _discard(conn)
            return False
        if not won:
            await conn.close()
            return False
        self._conn = conn
        return True

    async def still_held(self) -> bool:
        """Ask on the lock's own session: if that session is gone, so is the lock (another may hold it)."""
        if self._db.is_sqlite:
            return True
        conn = self._conn
        if conn is None:
            return False
        try:
            await conn.execute(text("SELECT 1"))
            await conn.commit()
        except (SQLAlchemyError, OSError):
            self._conn = None
            await _discard(conn)
            return False
        return True

    async def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
            await conn.commit()
            await conn.close()
        except (SQLAlchemyError, OSError):
            await _discard(conn)


async def _discard(conn: AsyncConnection) -> None:
    """Never hand a session that may still hold the lock back to the pool: drop it."""
    try:
        await conn.invalidate()
        await conn.close()
    except (SQLAlchemyError, OSError):
        logger.debug("leader lock: connection already gone")
