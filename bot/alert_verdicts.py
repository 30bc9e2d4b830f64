"""The alert rules evaluated with this configuration: what the scheduler's check, ``/alerts`` and
``leadtrail alerts check`` all look at."""

from __future__ import annotations

from datetime import datetime

from bot.settings import Settings
from reports.alert_check import verdicts_at
from reports.alerts import AlertVerdict
from storage.database import Database


async def configured_verdicts(db: Database, settings: Settings, now: datetime) -> list[AlertVerdict]:
    """Every rule's verdict at ``now`` (aware), firing or not, with the configured thresholds, follow-up
    lists and AI budget; nothing is sent or stored."""
    return await verdicts_at(
        db.sessions,
        now,
        settings.tz,
        settings.alerts,
        settings.reports.sla_seconds,
        settings.followup,
        settings.ai.budget(),
    )
