"""Turning the rules' verdicts into messages: once when a rule starts firing, again only after the
cooldown, "resolved" when it stops; muted rules stay quiet. State lives in the database."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.runtime.owner_outbox import enqueue_for_owners
from bot.settings import Settings
from reports.alert_check import verdicts_at
from reports.alerts import AlertVerdict
from reports.texts import alerts as texts
from storage.alert_state import load_states, log_alert, new_state
from storage.database import Database
from storage.models import AlertState

logger = logging.getLogger(__name__)


class AlertEngine:
    def __init__(self, db: Database, settings: Settings, on_enqueued: Callable[[], None]) -> None:
        self._db = db
        self._settings = settings
        self._on_enqueued = on_enqueued

    async def check(self, now: datetime) -> list[str]:
        """Evaluate, update the state and queue what must be said; returns the texts queued."""
        settings = self._settings
        verdicts = await verdicts_at(
            self._db.sessions,
            now,
            settings.tz,
            settings.alerts,
            settings.reports.sla_seconds,
            settings.ai.budget(),
        )
        cooldown = timedelta(hours=self._settings.alerts.cooldown_hours)
        queued: list[str] = []
        async with self._db.sessions() as session, session.begin():
            states = await load_states(session)
            for verdict in verdicts:
                state = states.get((verdict.rule, verdict.scope)) or new_state(
                    session, verdict.rule, verdict.scope
                )
                message = self._advance(state, verdict, now, cooldown)
                if message is None:
                    continue
                kind, text = message
                log_alert(session, now, verdict.rule, verdict.scope, kind, text)
                await enqueue_for_owners(
                    session, self._settings, kind="alert", text=text, subject=texts.SUBJECT
                )
                queued.append(text)
        if queued:
            logger.info("alerts: %d message(s) queued", len(queued))
            self._on_enqueued()
        return queued

    @staticmethod
    def _advance(
        state: AlertState, verdict: AlertVerdict, now: datetime, cooldown: timedelta
    ) -> tuple[str, str] | None:
        state.last_value = verdict.value
        muted = state.muted_until is not None and state.muted_until > now
        if verdict.firing:
            if not state.firing:
                state.firing, state.since = True, verdict.since or now
            if not verdict.repeats and state.last_sent_at is not None:
                return None
            if muted or (state.last_sent_at is not None and now - state.last_sent_at < cooldown):
                return None
            state.last_sent_at = now
            return "alert", verdict.text
        if not state.firing:
            return None
        state.firing, state.since = False, None
        if muted or state.last_sent_at is None or not verdict.repeats:
            return None
        return "resolved", texts.resolved(verdict.rule, verdict.scope)
