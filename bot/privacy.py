"""Erasing a client on request (152-FZ), the same for /forget and ``leadtrail forget``: erase now, then log
that it was done and how much, never whom."""

from __future__ import annotations

from reports.texts import privacy as texts
from storage.audit import record_action
from storage.database import Database
from storage.phones import DEFAULT_REGION
from storage.retention import ForgetReport, forget_client

# The audit log's owner id for what was done on the server's command line.
CLI_OWNER_ID = 0


async def forget(db: Database, query: str, *, owner_id: int, region: str = DEFAULT_REGION) -> ForgetReport:
    """Erase everyone known by ``query`` and record it under ``owner_id`` (``CLI_OWNER_ID`` for the CLI);
    a phone without a country code is read in ``region``."""
    report = await forget_client(db, query, redacted_as=texts.AUDIT_REDACTED, region=region)
    await record_action(db.sessions, owner_id, "forget", texts.audit_details(report))
    return report
