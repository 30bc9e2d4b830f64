"""Turning the rules' verdicts into messages; state lives in the database.

A rule about the business speaks once when it starts firing, again only after the cooldown, and says
"resolved" when it stops. A rule about one client's case (``reports.alerts.CASE_RULES``: a client waiting
for an answer) speaks once per case, owners and staff alike, with a button to the client's card; more
such cases in one check than ``alerts.unanswered_max_per_check`` become one summary; a case that ends
(a reply, a handled item) is closed silently. Muted rules stay quiet.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.alert_verdicts import configured_verdicts
from bot.runtime.owner_outbox import enqueue_for_owners
from bot.settings import Settings
from bot.telegram.views.followup import LISTS_KEYBOARD, item_keyboard_kind
from reports.alerts import CASE_RULES, UNANSWERED, AlertVerdict
from reports.texts import alerts as texts
from storage.alert_state import drop_states, load_states, log_alert, new_state
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
        verdicts = await configured_verdicts(self._db, settings, now)
        cooldown = timedelta(hours=settings.alerts.cooldown_hours)
        queued: list[str] = []
        async with self._db.sessions() as session, session.begin():
            states = await load_states(session)
            muted = {rule for (rule, _), state in states.items() if _muted(state, now)}
            cases: list[AlertVerdict] = []
            for verdict in verdicts:
                state = states.get((verdict.rule, verdict.scope)) or new_state(
                    session, verdict.rule, verdict.scope
                )
                if verdict.rule in CASE_RULES:
                    if self._opens_case(state, verdict, now, muted=verdict.rule in muted):
                        cases.append(verdict)
                    continue
                message = self._advance(state, verdict, now, cooldown)
                if message is None:
                    continue
                kind, text = message
                log_alert(session, now, verdict.rule, verdict.scope, kind, text)
                await enqueue_for_owners(session, settings, kind="alert", text=text, subject=texts.SUBJECT)
                queued.append(text)
            # A case's state lives while the case does; the rule's own (scope "") keeps its mute.
            current = {(verdict.rule, verdict.scope) for verdict in verdicts}
            ended = [key for key in states if key[0] in CASE_RULES and key[1] and key not in current]
            await drop_states(session, ended)
            queued += await self._send_cases(session, cases, now)
        if queued:
            logger.info("alerts: %d message(s) queued", len(queued))
            self._on_enqueued()
        return queued

    async def _send_cases(self, session: AsyncSession, cases: list[AlertVerdict], now: datetime) -> list[str]:
        """One message per case with a button to the client, or one summary with a button to the lists."""
        settings = self._settings
        if len(cases) > settings.alerts.unanswered_max_per_check:
            text = texts.unanswered_summary(
                [verdict.value or 0.0 for verdict in cases], settings.followup.unanswered_minutes
            )
            log_alert(session, now, UNANSWERED, "", "alert", text)
            await enqueue_for_owners(
                session,
                settings,
                kind="alert",
                text=text,
                subject=texts.SUBJECT,
                keyboard=LISTS_KEYBOARD,
                staff=True,
            )
            return [text]
        for verdict in cases:
            log_alert(session, now, verdict.rule, verdict.scope, "alert", texts.case_log(verdict))
            await enqueue_for_owners(
                session,
                settings,
                kind="alert",
                text=verdict.text,
                subject=texts.SUBJECT,
                keyboard=item_keyboard_kind(CASE_RULES[verdict.rule]),
                client_id=verdict.client_id,
                staff=True,
            )
        return [verdict.text for verdict in cases]

    @staticmethod
    def _opens_case(state: AlertState, verdict: AlertVerdict, now: datetime, *, muted: bool) -> bool:
        """A case is told once: when it fires with a ``since`` not told before (a client's new waiting
        message is a new case). Outside working hours it does not fire and nothing changes, so whoever
        still waits is told when the day starts; muted, it is recorded as told."""
        state.last_value = verdict.value
        if not verdict.firing or state.since == verdict.since:
            return False
        state.firing, state.since = True, verdict.since
        if muted:
            return False
        state.last_sent_at = now
        return True

    @staticmethod
    def _advance(
        state: AlertState, verdict: AlertVerdict, now: datetime, cooldown: timedelta
    ) -> tuple[str, str] | None:
        state.last_value = verdict.value
        muted = _muted(state, now)
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


def _muted(state: AlertState, now: datetime) -> bool:
    return state.muted_until is not None and state.muted_until > now
