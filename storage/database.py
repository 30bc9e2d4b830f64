"""Opening the database: engine, SQLite pragmas, and migrations applied before anything reads or writes."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

logger = logging.getLogger(__name__)

_MIGRATION_LOCK_KEY = 0x4C54_4D49_4752_4154  # "LTMIGRAT": one migration at a time per database
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
SQLITE_TEMP_STORE = "MEMORY"


class StorageUnavailable(Exception):
    """The database cannot be written or read right now; callers should retry later."""


@dataclass(frozen=True)
class Database:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    async def ping(self) -> None:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError) as exc:
            raise StorageUnavailable(str(exc)) from exc

    async def close(self) -> None:
        await self.engine.dispose()


def sqlite_pragmas(busy_timeout_ms: int) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA temp_store={SQLITE_TEMP_STORE}")
        cursor.close()

    return on_connect


def _ensure_sqlite_directory(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)


def create_engine(url: str, busy_timeout_ms: int = 5000) -> AsyncEngine:
    if url.startswith("sqlite"):
        _ensure_sqlite_directory(url)
        # hide_parameters: a failed statement's message must not carry clients' texts into the log.
        engine = create_async_engine(
            url, connect_args={"timeout": busy_timeout_ms / 1000}, hide_parameters=True
        )
        event.listen(engine.sync_engine, "connect", sqlite_pragmas(busy_timeout_ms))
        return engine
    return create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10, hide_parameters=True)


def _alembic_config(connection: Connection) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    from alembic import command

    command.upgrade(_alembic_config(connection), "head")


def _current_and_head(connection: Connection) -> tuple[str | None, str | None]:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    current = MigrationContext.configure(connection).get_current_revision()
    head = ScriptDirectory.from_config(_alembic_config(connection)).get_current_head()
    return current, head


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision; cheap when it is already there."""
    async with engine.connect() as conn:
        current, head = await conn.run_sync(_current_and_head)
    if current == head:
        return
    logger.info("migrating database schema from %s to %s", current or "empty", head)
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Several processes starting at once: one migrates, the others wait here, then find it at head.
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
        await conn.run_sync(_upgrade)


async def open_database(url: str, busy_timeout_ms: int = 5000, *, apply_migrations: bool = True) -> Database:
    engine = create_engine(url, busy_timeout_ms)
    try:
        if apply_migrations:
            await migrate(engine)
    except (SQLAlchemyError, OSError) as exc:
        await engine.dispose()
        raise StorageUnavailable(
            f"database {make_url(url).render_as_string(hide_password=True)}: {exc}"
        ) from exc
    except BaseException:
        await engine.dispose()
        raise
    return Database(engine, async_sessionmaker(engine, expire_on_commit=False))
