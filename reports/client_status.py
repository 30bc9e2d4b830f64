"""Where a client stands, from their business events: the line an owner reads first on a card."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from storage.event_types import PAID, EventType


class Outcome(Protocol):
    event: str
    reason: str | None
    intent: str | None
    status: str | None
    amount: float | None


class Stage(StrEnum):
    DIALOG = "dialog"
    LEAD = "lead"
    BOOKED = "booked"
    VISITED = "visited"
    PAID = "paid"
    NO_SHOW = "no_show"
    REFUSED = "refused"
    CANCELLED = "cancelled"


_STAGE_BY_EVENT: dict[str, Stage] = {
    EventType.LEAD_CREATED: Stage.LEAD,
    EventType.APPOINTMENT_BOOKED: Stage.BOOKED,
    EventType.APPOINTMENT_CONFIRMED: Stage.BOOKED,
    EventType.APPOINTMENT_RESCHEDULED: Stage.BOOKED,
    EventType.VISIT: Stage.VISITED,
    EventType.NO_SHOW: Stage.NO_SHOW,
    EventType.REFUSAL: Stage.REFUSED,
    EventType.APPOINTMENT_CANCELLED: Stage.CANCELLED,
}


@dataclass(frozen=True, slots=True)
class ClientStatus:
    stage: Stage
    reason: str | None
    total_paid: float
    payments: int


def client_status(outcomes: Sequence[Outcome]) -> ClientStatus:
    """The latest business event decides the stage; a paid payment means the client came and paid."""
    stage, reason = Stage.DIALOG, None
    total_paid, payments = 0.0, 0
    for outcome in outcomes:
        if outcome.event == EventType.PAYMENT_STATUS:
            if outcome.status == PAID:
                stage, reason = Stage.PAID, None
                total_paid += outcome.amount or 0.0
                payments += 1
            continue
        stage = _STAGE_BY_EVENT.get(outcome.event, stage)
        reason = (outcome.reason or outcome.intent) if stage in (Stage.REFUSED, Stage.CANCELLED) else None
    return ClientStatus(stage, reason, total_paid, payments)
