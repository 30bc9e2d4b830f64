"""One batch of the event writer in one transaction: link clients, insert the events, keep the rejected.

The same code runs inside ``leadtrail run``'s writer process (``storage.writer_process``) and, for the
other commands and for PostgreSQL, in the writer's own thread; what goes wrong is told back as a
``StoreFailed`` that says whether storage is unavailable or one batch's data broke the transaction.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from storage.clients import ClientResolver
from storage.database import StorageUnavailable
from storage.event_insert import insert_events
from storage.event_row import EventRow
from storage.identity_policy import IdentityPolicy
from storage.models import QuarantinedPayload

logger = logging.getLogger(__name__)

QUARANTINE_PAYLOAD_LIMIT = 64 * 1024


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """What a writer's transactions need of the configuration, as plain values."""

    quarantine_max_rows: int = 10_000
    identities: IdentityPolicy = field(default_factory=IdentityPolicy)


@dataclass(frozen=True, slots=True)
class Rejected:
    """A payload that failed validation, kept in quarantine with its reasons."""

    source: str
    payload: str
    errors: list[dict[str, Any]]
    channel: str = "unknown"  # as the payload gave it, for per-channel counts (/metrics)


class StoreFailed(StorageUnavailable):
    """A batch was not stored. ``unavailable``: storage trouble (retry later); otherwise the batch's data."""

    def __init__(self, kind: str, reason: str, unavailable: bool) -> None:
        super().__init__(f"storage write failed: {kind}")
        self.kind = kind
        self.reason = reason
        self.unavailable = unavailable

    def __reduce__(self) -> tuple[type[StoreFailed], tuple[str, str, bool]]:
        return type(self), (self.kind, self.reason, self.unavailable)  # sent back by the writer process


class BatchStore:
    """The writer's transaction body, with the identity cache that must be dropped after a failure."""

    def __init__(self) -> None:
        self._resolver = ClientResolver()

    def forget(self) -> None:
        """Drop the identity cache: a transaction failed, so it may name what was rolled back."""
        self._resolver.forget()

    def store(
        self,
        conn: Connection,
        rows: list[EventRow],
        rejected: list[Rejected],
        now: datetime,
        settings: StoreSettings,
    ) -> set[str]:
        """Call in the transaction that stores them; returns the event_ids that were new."""
        inserted: set[str] = set()
        if rows and (new_rows := self._resolver.resolve(conn, rows, now, settings.identities)):
            inserted = insert_events(conn, new_rows)
        if rejected:
            _quarantine(conn, rejected, now, settings.quarantine_max_rows)
        return inserted


def _quarantine(conn: Connection, rejected: list[Rejected], now: datetime, max_rows: int) -> None:
    conn.execute(
        insert(QuarantinedPayload),
        [
            {
                "received_at": now,
                "source": item.source[:64],
                "errors": item.errors,
                # PostgreSQL text cannot hold U+0000, which an undecodable body may: kept as U+FFFD.
                "payload": item.payload[:QUARANTINE_PAYLOAD_LIMIT].replace("\x00", "\ufffd"),
                "payload_bytes": len(item.payload.encode("utf-8", "replace")),
            }
            for item in rejected
        ],
    )
    oldest_kept = (
        select(QuarantinedPayload.id)
        .order_by(QuarantinedPayload.id.desc())
        .offset(max_rows - 1)
        .limit(1)
        .scalar_subquery()
    )
    conn.execute(delete(QuarantinedPayload).where(QuarantinedPayload.id < oldest_kept))


# PostgreSQL's SQLSTATEs of storage trouble: connection (08), disk full / out of resources (53), shutdown
# (57), I/O error (58), read-only transaction (25006), lock not available (55P03). asyncpg's errors reach
# SQLAlchemy as plain DBAPIErrors, so the code is what tells them from one job's bad data.
_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53", "57", "58")
_UNAVAILABLE_SQLSTATES = ("25006", "55P03")


def _is_unavailable(exc: SQLAlchemyError | OSError) -> bool:
    """Storage trouble (locked, disk full, read-only, I/O error, connection lost), not one job's bad data."""
    if isinstance(exc, OperationalError | OSError):  # SQLite: locked, full, read-only, disk I/O error
        return True
    if not isinstance(exc, DBAPIError):
        return False
    sqlstate = str(getattr(exc.orig, "sqlstate", None) or "")
    if sqlstate.startswith(_UNAVAILABLE_SQLSTATE_CLASSES) or sqlstate in _UNAVAILABLE_SQLSTATES:
        return True
    return exc.connection_invalidated


def store_failure(exc: Exception) -> StoreFailed:
    """What a failed transaction tells the writer: storage trouble, or this batch's data (a bug, too)."""
    if isinstance(exc, SQLAlchemyError | OSError):
        # The driver's own words ("database is locked", "disk I/O error"), never the exception's text or
        # traceback: SQLAlchemy puts the statement's parameters there, i.e. the clients' messages.
        reason = (str(getattr(exc, "orig", None) or exc).splitlines() or [""])[0][:200]
        return StoreFailed(type(exc).__name__, reason, unavailable=_is_unavailable(exc))
    # A bug: this transaction fails, the writer goes on with the next one. Where, not what: the
    # exception's text may carry a client's data.
    where = traceback.extract_tb(exc.__traceback__)[-1]
    logger.error("a write transaction failed: %s at %s:%s", type(exc).__name__, where.filename, where.lineno)
    return StoreFailed(type(exc).__name__, "a bug in the writer", unavailable=False)
