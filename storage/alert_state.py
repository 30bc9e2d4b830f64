"""Where each alert rule stands, and the log of what was sent: kept in the database so a restart does
not repeat an alert inside its cooldown, nor forget to say "resolved"."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AlertLogEntry, AlertState


async def load_states(session: AsyncSession) -> dict[tuple[str, str], AlertState]:
    result = await session.execute(select(AlertState))
    return {(state.rule, state.scope): state for state in result.scalars()}


def new_state(session: AsyncSession, rule: str, scope: str) -> AlertState:
    state = AlertState(rule=rule, scope=scope, firing=False)
    session.add(state)
    return state


def log_alert(session: AsyncSession, at: datetime, rule: str, scope: str, kind: str, text: str) -> None:
    session.add(AlertLogEntry(at=at, rule=rule, scope=scope, kind=kind, text=text))


async def drop_states(session: AsyncSession, keys: Sequence[tuple[str, str]]) -> None:
    """Forget these (rule, scope) states: cases that ended, so the table does not grow with every case."""
    if keys:
        await session.execute(
            delete(AlertState)
            .where(or_(*(and_(AlertState.rule == rule, AlertState.scope == scope) for rule, scope in keys)))
            .execution_options(synchronize_session=False)
        )


async def recent_alerts(session: AsyncSession, limit: int = 5) -> list[AlertLogEntry]:
    result = await session.execute(select(AlertLogEntry).order_by(AlertLogEntry.id.desc()).limit(limit))
    return list(result.scalars())


async def mute_rule(session: AsyncSession, rule: str, until: datetime) -> None:
    """Mute every scope of the rule, including scopes that have not fired yet: the rule's own state
    (scope "") holds the mute for them."""
    states = await load_states(session)
    if (rule, "") not in states:
        new_state(session, rule, "")
    await session.execute(update(AlertState).where(AlertState.rule == rule).values(muted_until=until))
    await session.flush()
    for (state_rule, _scope), state in states.items():
        if state_rule == rule:
            await session.refresh(state)


async def muted_rules(session: AsyncSession, now: datetime) -> dict[str, datetime]:
    result = await session.execute(
        select(AlertState.rule, AlertState.muted_until).where(AlertState.muted_until > now)
    )
    return {rule: until for rule, until in result.all() if until is not None}
