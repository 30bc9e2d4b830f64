"""The CRM job outbox and the CRM worker's state (cursor over the events table, last success).

Every call LeadTrail makes to the CRM is a row here first, so an outage or a rate limit only delays it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ClientIdentity, CrmJob, CrmLinkState, StoredEvent
from storage.upsert import insert_ignoring_conflicts

PENDING, DONE, FAILED = "pending", "done", "failed"
ERROR_LIMIT = 256
_STATE_ID = 1


@dataclass(frozen=True, slots=True)
class NewEvent:
    id: int
    event: str
    client_id: int


@dataclass(frozen=True, slots=True)
class FailedJob:
    kind: str
    error: str
    at: datetime | None


@dataclass(frozen=True, slots=True)
class LinkStatus:
    last_success_at: datetime | None
    pending: int
    failed: int
    recent_failures: list[FailedJob]


async def enqueue(
    session: AsyncSession, kind: str, payload: dict[str, Any], dedup_key: str | None = None
) -> bool:
    """Add a job in the caller's transaction; False when a job with this ``dedup_key`` already exists."""
    now = datetime.now(UTC)
    conn = await session.connection()
    values = {
        "created_at": now,
        "kind": kind,
        "dedup_key": dedup_key,
        "payload": payload,
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": now,
    }
    if dedup_key is None:
        await session.execute(insert(CrmJob).values(**values))
        return True
    result = await conn.execute(insert_ignoring_conflicts(conn, CrmJob, ["dedup_key"]), [values])
    return bool(result.rowcount)


async def due_jobs(session: AsyncSession, now: datetime, limit: int) -> list[CrmJob]:
    result = await session.execute(
        select(CrmJob)
        .where(CrmJob.status == PENDING, CrmJob.next_attempt_at <= now)
        .order_by(CrmJob.next_attempt_at, CrmJob.id)
        .limit(limit)
    )
    return list(result.scalars())


async def mark_done(session: AsyncSession, job_id: int) -> None:
    await session.execute(
        update(CrmJob)
        .where(CrmJob.id == job_id)
        .values(status=DONE, attempts=CrmJob.attempts + 1, finished_at=datetime.now(UTC), last_error=None)
    )


async def mark_retry(session: AsyncSession, job_id: int, delay: timedelta, error: str) -> None:
    await session.execute(
        update(CrmJob)
        .where(CrmJob.id == job_id)
        .values(
            attempts=CrmJob.attempts + 1,
            next_attempt_at=datetime.now(UTC) + delay,
            last_error=error[:ERROR_LIMIT],
        )
    )


async def mark_failed(session: AsyncSession, job_id: int, error: str) -> None:
    await session.execute(
        update(CrmJob)
        .where(CrmJob.id == job_id)
        .values(
            status=FAILED,
            attempts=CrmJob.attempts + 1,
            finished_at=datetime.now(UTC),
            last_error=error[:ERROR_LIMIT],
        )
    )


async def events_cursor(session: AsyncSession) -> int:
    """Where the worker stopped reading events; the first start begins at the newest event, so turning
    the link on does not send a CRM the whole history."""
    state = await session.get(CrmLinkState, _STATE_ID)
    if state is not None:
        return state.events_cursor
    newest = (await session.execute(select(func.max(StoredEvent.id)))).scalar_one_or_none() or 0
    conn = await session.connection()
    await conn.execute(
        insert_ignoring_conflicts(conn, CrmLinkState, ["id"]),
        [{"id": _STATE_ID, "events_cursor": newest, "last_success_at": None}],
    )
    state = await session.get(CrmLinkState, _STATE_ID, populate_existing=True)
    assert state is not None
    return state.events_cursor


async def set_events_cursor(session: AsyncSession, cursor: int) -> None:
    await session.execute(
        update(CrmLinkState).where(CrmLinkState.id == _STATE_ID).values(events_cursor=cursor)
    )


async def record_success(session: AsyncSession) -> None:
    await session.execute(
        update(CrmLinkState).where(CrmLinkState.id == _STATE_ID).values(last_success_at=datetime.now(UTC))
    )


async def events_after(session: AsyncSession, cursor: int, limit: int) -> list[NewEvent]:
    result = await session.execute(
        select(StoredEvent.id, StoredEvent.event, StoredEvent.client_id)
        .where(StoredEvent.id > cursor)
        .order_by(StoredEvent.id)
        .limit(limit)
    )
    return [NewEvent(row.id, row.event, row.client_id) for row in result]


async def clients_with_crm_id(session: AsyncSession, client_ids: set[int]) -> set[int]:
    if not client_ids:
        return set()
    result = await session.execute(
        select(ClientIdentity.client_id)
        .where(ClientIdentity.kind == "crm", ClientIdentity.client_id.in_(client_ids))
        .distinct()
    )
    return set(result.scalars())


async def link_status(session: AsyncSession, failures_shown: int = 5) -> LinkStatus:
    state = await session.get(CrmLinkState, _STATE_ID)
    grouped = await session.execute(select(CrmJob.status, func.count()).group_by(CrmJob.status))
    counts = {status: count for status, count in grouped}
    failed = await session.execute(
        select(CrmJob.kind, CrmJob.last_error, CrmJob.finished_at)
        .where(CrmJob.status == FAILED)
        .order_by(CrmJob.id.desc())
        .limit(failures_shown)
    )
    return LinkStatus(
        last_success_at=state.last_success_at if state else None,
        pending=int(counts.get(PENDING, 0)),
        failed=int(counts.get(FAILED, 0)),
        recent_failures=[FailedJob(kind, error or "", at) for kind, error, at in failed],
    )
