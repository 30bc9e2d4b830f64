"""Opening the database: engine, SQLite pragmas, and migrations applied before anything reads or writes."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

if TYPE_CHECKING:
    from storage.writer_process import WriterProcess

logger = logging.getLogger(__name__)

_MIGRATION_LOCK_KEY = 0x4C54_4D49_4752_4154  # "LTMIGRAT": one migration at a time per database
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_TEMP_STORE = "MEMORY"
# Reads (reports, timelines, exports) see the file through a memory map instead of a copy per page read:
# a 30-day report's scans took a quarter less time. Only the readers' connections: SQLite still writes
# through ordinary I/O, and the event writer's own connection keeps no map, so a busy ingest does not
# map the file into its memory.
SQLITE_READ_MMAP_BYTES = 1 << 30
# The event writer's page cache (SQLite's default is 2 MiB). A batch of a thousand rows touches about a
# page per row of ix_events_client_user, which is kept in client order, not time order, so its pages are
# spread over the whole index. 16 MiB made plain inserts of a million rows 20 % faster (64 MiB:
# 28 %) and HTTP ingest 6–11 %, for 16 MiB more memory (BENCHMARKS.md, bench.schema_floor).
SQLITE_WRITER_CACHE_KIB = 16 * 1024
T = TypeVar("T")


class StorageUnavailable(Exception):
    """The database cannot be written or read right now; callers should retry later."""


class WriteTransactions:
    """Runs the event writer's transactions, each a plain function of a (synchronous) connection.

    SQLite: the whole transaction runs in one thread of its own, on a stdlib ``sqlite3`` connection that
    begins with ``BEGIN IMMEDIATE`` (the write lock first, so what the transaction reads stays true until
    it commits). One hand-over per transaction: through the async driver every statement is a hand-over
    to its thread and back, and under load each waited for the busy event loop (measured: a
    single-event commit took 2 ms idle, most of a 50 ms p50 under 1,000 requests/s). ``leadtrail run``
    goes one step further with a ``WriterProcess``: the same transactions in a process of their own, so
    their Python work no longer competes with the event loop for the GIL. PostgreSQL: asyncpg on the
    event loop, where a statement costs no thread switch.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        sqlite_engine: Engine | None,
        lock_timeout_ms: int = 5000,
        process: WriterProcess | None = None,
    ) -> None:
        self._engine = engine
        self._sqlite_engine = sqlite_engine
        self._lock_timeout_ms = max(1, int(lock_timeout_ms))  # PostgreSQL reads 0 as "wait for ever"
        self._thread = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="leadtrail-writer")
            if sqlite_engine is not None and process is None
            else None
        )
        self.process = process

    @property
    def sqlite_engine(self) -> Engine | None:
        """The SQLite writer's own engine (for listeners, e.g. a test that makes the file read-only)."""
        return self._sqlite_engine

    async def run(self, work: Callable[[Connection], T]) -> T:
        """``work(connection)`` in one transaction, committed when it returns, rolled back if it raises.

        With a writer process, ``work`` must be picklable and its failures come back as ``StoreFailed``.
        """
        if self.process is not None:
            return await self.process.run(work)
        if self._thread is None:
            async with self._engine.begin() as conn:
                # Like SQLite's busy timeout: a table locked by someone else (a long migration, a manual
                # LOCK) fails the write after a while, so senders get 503 and retry instead of hanging.
                await conn.execute(text(f"SET LOCAL lock_timeout = {self._lock_timeout_ms}"))
                return await conn.run_sync(work)
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._run_sqlite, work)

    def _run_sqlite(self, work: Callable[[Connection], T]) -> T:
        assert self._sqlite_engine is not None
        with self._sqlite_engine.begin() as conn:
            return work(conn)

    async def close(self) -> None:
        if self.process is not None:
            await self.process.close()
        if self._thread is None or self._sqlite_engine is None:
            return
        # Closed in the thread that opened its connection.
        await asyncio.get_running_loop().run_in_executor(self._thread, self._sqlite_engine.dispose)
        self._thread.shutdown(wait=False)


@dataclass(frozen=True)
class Database:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    writes: WriteTransactions

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
        await self.writes.close()
        await self.engine.dispose()


def sqlite_pragmas(busy_timeout_ms: int, mmap_bytes: int = 0, cache_kib: int | None = None) -> Any:
    """The connection settings of every SQLite connection; ``cache_kib`` None keeps SQLite's default."""

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA temp_store={SQLITE_TEMP_STORE}")
        cursor.execute(f"PRAGMA mmap_size={int(mmap_bytes)}")
        if cache_kib is not None:
            cursor.execute(f"PRAGMA cache_size=-{int(cache_kib)}")
        cursor.close()

    return on_connect


def _ensure_sqlite_directory(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)


def _no_implicit_transactions(dbapi_connection: Any, _record: Any) -> None:
    # Transactions are begun by the "begin" listener below, not lazily by the driver before a write.
    dbapi_connection.isolation_level = None


def _begin_immediate(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def create_sqlite_writer_engine(url: str, busy_timeout_ms: int) -> Engine:
    """A synchronous engine on the same SQLite file, for ``WriteTransactions``."""
    sync_url = make_url(url).set(drivername="sqlite+pysqlite")
    engine = create_sync_engine(
        sync_url,
        connect_args={"timeout": busy_timeout_ms / 1000, "check_same_thread": False},
        hide_parameters=True,
        pool_size=1,
    )
    event.listen(engine, "connect", sqlite_pragmas(busy_timeout_ms, cache_kib=SQLITE_WRITER_CACHE_KIB))
    event.listen(engine, "connect", _no_implicit_transactions)
    event.listen(engine, "begin", _begin_immediate)
    return engine


def create_engine(url: str, busy_timeout_ms: int = 5000) -> AsyncEngine:
    if url.startswith("sqlite"):
        _ensure_sqlite_directory(url)
        # hide_parameters: a failed statement's message must not carry clients' texts into the log.
        engine = create_async_engine(
            url, connect_args={"timeout": busy_timeout_ms / 1000}, hide_parameters=True
        )
        event.listen(engine.sync_engine, "connect", sqlite_pragmas(busy_timeout_ms, SQLITE_READ_MMAP_BYTES))
        return engine
    # No JIT: LeadTrail's queries are short, and the compiler took longer than the query itself (a 30-day
    # heat map: 135 ms of JIT in 222 ms); big row estimates for the reports' joins switch it on otherwise.
    return create_async_engine(
        url,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=10,
        hide_parameters=True,
        connect_args={"server_settings": {"jit": "off"}},
    )


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


async def open_database(
    url: str, busy_timeout_ms: int = 5000, *, apply_migrations: bool = True, writer_process: bool = False
) -> Database:
    """``writer_process``: on SQLite (POSIX), write in ``storage.writer_process`` (``leadtrail run``)."""
    engine = create_engine(url, busy_timeout_ms)
    process = None
    if writer_process and url.startswith("sqlite") and os.name == "posix":
        from storage.writer_process import WriterProcess, WriterSettings

        process = WriterProcess(WriterSettings(url, busy_timeout_ms))
        process.spawn()  # its start-up overlaps the migrations
    try:
        if apply_migrations:
            await migrate(engine)
        if process is not None:
            await process.start()
    except (SQLAlchemyError, OSError, StorageUnavailable) as exc:
        await _discard(engine, process)
        raise StorageUnavailable(
            f"database {make_url(url).render_as_string(hide_password=True)}: {exc}"
        ) from exc
    except BaseException:
        await _discard(engine, process)
        raise
    sqlite_writer = (
        create_sqlite_writer_engine(url, busy_timeout_ms)
        if url.startswith("sqlite") and process is None
        else None
    )
    return Database(
        engine,
        async_sessionmaker(engine, expire_on_commit=False),
        WriteTransactions(engine, sqlite_writer, busy_timeout_ms, process),
    )


async def _discard(engine: AsyncEngine, process: WriterProcess | None) -> None:
    if process is not None:
        await process.close()
    await engine.dispose()
