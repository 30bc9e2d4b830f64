"""``leadtrail run``'s SQLite write transactions in a process of their own, so they have a core of their own.

In one process the writer's Python work (linking clients, the driver's statements) took the GIL from
the event loop: at 1,400 events/s the process needed a whole core and the acknowledgements queued
(p99 70–90 ms). The event loop keeps HTTP, validation and the group commit; each batch goes over a
socket pair to this process and the answer comes back only after its commit, so an acknowledgement
still means the events are on disk. Every other write transaction of ``WriteTransactions`` (the search
index's batches) comes here too, so they take turns with the commits instead of making them wait on
the file lock.

The process ends when its socket closes (its parent stopped or was killed) and ignores SIGINT and
SIGTERM, which a terminal or a service manager sends to the whole group: the parent decides when the
writer stops, after it has committed what it acknowledged. A writer process that died is started
again for the next transaction; the one in flight is refused as "storage unavailable" and its senders
retry (idempotent on event_id, so a batch that did commit counts as duplicates then).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from sqlalchemy.engine import Connection as DatabaseConnection
from sqlalchemy.engine import Engine

from storage.batch_store import BatchStore, Rejected, StoreFailed, StoreSettings, store_failure
from storage.database import create_sqlite_writer_engine
from storage.event_row import EventRow

logger = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 30
T = TypeVar("T")
Work = Callable[[DatabaseConnection], Any]


@dataclass(frozen=True)
class WriterSettings:
    url: str
    busy_timeout_ms: int


@dataclass(frozen=True)
class _Batch:
    rows: list[EventRow]
    rejected: list[Rejected]
    now: datetime
    settings: StoreSettings


class WriterProcess:
    """The parent's side: one transaction at a time, from a thread of its own so the loop never blocks."""

    def __init__(self, settings: WriterSettings) -> None:
        self._settings = settings
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="leadtrail-writer-link")
        self._child: subprocess.Popen[bytes] | None = None
        self._link: Connection | None = None
        self._ready = False

    def spawn(self) -> None:
        """Start the process; its imports overlap whatever the parent does until ``start``."""
        if self._link is None:
            ours, theirs = socket.socketpair()
            with theirs:
                self._child = subprocess.Popen(
                    [sys.executable, "-m", "storage.writer_process", str(theirs.fileno())],
                    pass_fds=(theirs.fileno(),),
                    stdin=subprocess.DEVNULL,
                )
            self._link = Connection(ours.detach())
            self._ready = False

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None else None

    async def start(self) -> None:
        """Wait until the process can write."""
        await asyncio.get_running_loop().run_in_executor(self._thread, self._connected)

    async def store(
        self, rows: list[EventRow], rejected: list[Rejected], now: datetime, settings: StoreSettings
    ) -> set[str]:
        inserted: set[str] = await self._ask(_Batch(rows, rejected, now, settings))
        return inserted

    async def run(self, work: Callable[[DatabaseConnection], T]) -> T:
        """``work`` (picklable: a module's function, or a partial of one) in one transaction there."""
        result: T = await self._ask(work)
        return result

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._stop_child)
        self._thread.shutdown(wait=False)

    async def _ask(self, message: _Batch | Work) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._round_trip, message)

    def _connected(self) -> Connection:
        self.spawn()
        assert self._link is not None
        if not self._ready:
            try:
                self._link.send(self._settings)
                self._link.recv()  # its engine is made
            except (OSError, EOFError):
                self._stop_child()
                raise StoreFailed("WriterProcessStopped", "the writer process did not start", True) from None
            self._ready = True
        return self._link

    def _round_trip(self, message: _Batch | Work) -> Any:
        link = self._connected()
        try:
            link.send(message)
            reply = link.recv()
        except (OSError, EOFError):
            self._stop_child()
            raise StoreFailed("WriterProcessStopped", "the writer process stopped", True) from None
        if isinstance(reply, StoreFailed):
            raise reply
        return reply

    def _stop_child(self) -> None:
        link, child = self._link, self._child
        self._link = self._child = None
        if link is not None:
            link.close()  # the process finishes the transaction it holds, then sees the end and exits
        if child is not None:
            try:
                child.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                logger.error("the writer process did not stop within %d s; killing it", STOP_GRACE_SECONDS)
                child.kill()
                child.wait()


def _transaction(engine: Engine, batch: BatchStore, message: _Batch | Work) -> Any:
    if isinstance(message, _Batch):
        with engine.begin() as conn:
            return batch.store(conn, message.rows, message.rejected, message.now, message.settings)
    with engine.begin() as conn:
        return message(conn)


def serve(link: Connection) -> None:
    """The writer process: transactions in, their results (or a ``StoreFailed``) out, until the end."""
    try:
        settings: WriterSettings = link.recv()
    except EOFError:  # the parent gave up before it needed us (the database could not be opened)
        return
    engine = create_sqlite_writer_engine(settings.url, settings.busy_timeout_ms)
    batch = BatchStore()
    link.send(True)
    try:
        while True:
            try:
                message = link.recv()
            except EOFError:
                return
            try:
                reply = _transaction(engine, batch, message)
            except Exception as exc:
                batch.forget()
                reply = store_failure(exc)
            try:
                link.send(reply)
            except OSError:
                return
    finally:
        engine.dispose()


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    serve(Connection(int(sys.argv[1])))


if __name__ == "__main__":
    # Run as the module, not as __main__: the parent pickles this module's classes by their module name.
    from storage.writer_process import main as module_main

    module_main()
