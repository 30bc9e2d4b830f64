"""What LeadTrail keeps about YCLIENTS besides the events: the last state it saw of each record (a webhook
is told apart from a repeat by comparing with it) and, per company, how the link is doing."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import YclientsLink, YclientsRecord

LOOKUP_CHUNK = 200


@dataclass(frozen=True, slots=True)
class RecordState:
    """A record as last seen: whose it is, when it is, whether the client came, whether it was deleted."""

    company_id: int
    record_id: int
    user_id: str
    starts_at: datetime | None
    attendance: int
    deleted: bool
    changed_at: datetime | None


@dataclass(frozen=True, slots=True)
class CompanyLink:
    company_id: int
    last_webhook_at: datetime | None
    last_sync_at: datetime | None
    synced_until: datetime | None
    last_error: str | None


def _upsert(session: AsyncSession, model: Any) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


async def record_states(
    session: AsyncSession, keys: Iterable[tuple[int, int]]
) -> dict[tuple[int, int], RecordState]:
    """The stored state of each (company_id, record_id) that has one."""
    wanted = sorted(set(keys))
    found: dict[tuple[int, int], RecordState] = {}
    for start in range(0, len(wanted), LOOKUP_CHUNK):
        chunk = wanted[start : start + LOOKUP_CHUNK]
        rows = await session.execute(
            select(YclientsRecord).where(
                tuple_(YclientsRecord.company_id, YclientsRecord.record_id).in_(chunk)
            )
        )
        for row in rows.scalars():
            found[(row.company_id, row.record_id)] = RecordState(
                row.company_id,
                row.record_id,
                row.user_id,
                row.starts_at,
                row.attendance,
                row.deleted,
                row.changed_at,
            )
    return found


async def save_record_states(session: AsyncSession, states: Sequence[RecordState], now: datetime) -> None:
    """Keep each record's newest state; a state older than the stored one (a late delivery) is ignored."""
    if not states:
        return
    insert = _upsert(session, YclientsRecord)
    stored = YclientsRecord.__table__.c
    statement = insert.on_conflict_do_update(
        index_elements=["company_id", "record_id"],
        set_={
            name: insert.excluded[name]
            for name in ("user_id", "starts_at", "attendance", "deleted", "changed_at", "seen_at")
        },
        where=or_(
            stored.changed_at.is_(None),
            insert.excluded.changed_at.is_(None),
            insert.excluded.changed_at >= stored.changed_at,
        ),
    )
    await session.execute(
        statement,
        [
            {
                "company_id": state.company_id,
                "record_id": state.record_id,
                "user_id": state.user_id,
                "starts_at": state.starts_at,
                "attendance": state.attendance,
                "deleted": state.deleted,
                "changed_at": state.changed_at,
                "seen_at": now,
            }
            for state in states
        ],
    )


async def _update_link(session: AsyncSession, company_id: int, **values: Any) -> None:
    insert = _upsert(session, YclientsLink)
    await session.execute(
        insert.values(company_id=company_id, **values).on_conflict_do_update(
            index_elements=["company_id"], set_=values
        )
    )


async def note_webhook(session: AsyncSession, company_ids: Iterable[int], now: datetime) -> None:
    for company_id in sorted(set(company_ids)):
        await _update_link(session, company_id, last_webhook_at=now)


async def synced_until(session: AsyncSession, company_id: int) -> datetime | None:
    """Where the last successful reconciliation of this company ended (None: never)."""
    result = await session.execute(
        select(YclientsLink.synced_until).where(YclientsLink.company_id == company_id)
    )
    return result.scalar_one_or_none()


async def note_sync(
    session: AsyncSession, company_id: int, now: datetime, *, until: datetime | None, error: str | None
) -> None:
    """A reconciliation ended: successfully up to ``until``, or with ``error`` (``until`` unchanged)."""
    values: dict[str, Any] = {"last_sync_at": now, "last_error": error[:256] if error else None}
    if until is not None:
        values["synced_until"] = until
    await _update_link(session, company_id, **values)


async def link_status(session: AsyncSession) -> list[CompanyLink]:
    rows = await session.execute(select(YclientsLink).order_by(YclientsLink.company_id))
    return [
        CompanyLink(row.company_id, row.last_webhook_at, row.last_sync_at, row.synced_until, row.last_error)
        for row in rows.scalars()
    ]
