"""Claiming a scheduled run once, across restarts and processes (the unique key does the work)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import JobRun
from storage.upsert import insert_ignoring_conflicts


async def claim_run(session: AsyncSession, job: str, run_key: str) -> bool:
    """True for exactly one caller per (job, key), ever; the claim commits with the caller's transaction."""
    conn = await session.connection()
    statement = insert_ignoring_conflicts(conn, JobRun, ["job", "run_key"]).values(
        job=job, run_key=run_key, claimed_at=datetime.now(UTC)
    )
    result = await session.execute(statement.returning(JobRun.id))
    return result.scalar_one_or_none() is not None


async def run_exists(session: AsyncSession, job: str, run_key: str) -> bool:
    result = await session.execute(select(JobRun.id).where(JobRun.job == job, JobRun.run_key == run_key))
    return result.first() is not None


async def finish_run(session: AsyncSession, job: str, run_key: str) -> None:
    """Mark the run done (its work is in the same transaction as this, or already committed)."""
    await session.execute(
        update(JobRun)
        .where(JobRun.job == job, JobRun.run_key == run_key)
        .values(finished_at=datetime.now(UTC))
    )
