"""Follow-up lists (issue 19): from the numbers to the people someone must answer or call today.

Pure functions: the windows each list reads at a moment, the lists made from what storage found (a
handled item stays off its list until the client's next event), their order, and the measured rescue
(handled items whose client booked soon after). ``reports.followup_check`` reads the inputs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, model_validator

from storage.followup_items import (
    RESCUE_WINDOW,
    Candidate,
    FollowupInputs,
    FollowupWindows,
    HandledFollowups,
    ListKind,
    ListWindow,
)


class FollowupSettings(BaseModel):
    """``[followup]``: how long a client may wait, and how far back each list looks."""

    model_config = ConfigDict(extra="forbid")

    unanswered_minutes: float = Field(default=10, gt=0, le=1440)
    unanswered_hours: float = Field(default=24, gt=0, le=24 * 14)
    lead_hours: float = Field(default=24, ge=0)
    lookback_days: int = Field(default=14, ge=1, le=365)
    repeat_days: int = Field(default=42, ge=1)
    repeat_horizon_days: int = Field(default=180, ge=1)

    @model_validator(mode="after")
    def _windows_not_empty(self) -> FollowupSettings:
        # A window that ends before it starts would silently leave its list empty forever.
        if self.unanswered_minutes >= self.unanswered_hours * 60:
            raise ValueError("unanswered_minutes must be shorter than unanswered_hours")
        if self.lead_hours >= self.lookback_days * 24:
            raise ValueError("lead_hours must be shorter than lookback_days")
        if self.repeat_days >= self.repeat_horizon_days:
            raise ValueError("repeat_days must be fewer than repeat_horizon_days")
        return self


def windows(settings: FollowupSettings, now: datetime) -> FollowupWindows:
    """Where each list looks at ``now`` (aware)."""
    lookback = now - timedelta(days=settings.lookback_days)
    return FollowupWindows(
        now=now,
        unanswered=ListWindow(
            now - timedelta(hours=settings.unanswered_hours),
            now,
            due_by=now - timedelta(minutes=settings.unanswered_minutes),
        ),
        leads_without_booking=ListWindow(lookback, now - timedelta(hours=settings.lead_hours)),
        no_shows=ListWindow(lookback, now),
        repeat_due=ListWindow(
            now - timedelta(days=settings.repeat_horizon_days),
            now,
            due_by=now - timedelta(days=settings.repeat_days),
        ),
    )


@dataclass(frozen=True, slots=True)
class FollowupItem:
    """One client on one list: who, how to reach them, and the event that put them there (``since``)."""

    kind: ListKind
    client_id: int
    user_ids: tuple[str, ...]
    name: str | None
    phone: str | None
    channel: str
    since: datetime
    event: str
    message: str | None = None

    @property
    def title(self) -> str:
        """The name, else the first user id, else the client number."""
        return self.name or next(iter(self.user_ids), None) or f"#{self.client_id}"


@dataclass(frozen=True)
class FollowupLists:
    """The four lists at ``now``, each in the order to work through it."""

    now: datetime
    lists: dict[ListKind, tuple[FollowupItem, ...]]

    def __iter__(self) -> Iterator[tuple[ListKind, tuple[FollowupItem, ...]]]:
        return ((kind, self.lists.get(kind, ())) for kind in ListKind)

    def counts(self) -> dict[ListKind, int]:
        return {kind: len(items) for kind, items in self}

    def find(self, kind: ListKind, client_id: int) -> FollowupItem | None:
        return next((item for item in self.lists.get(kind, ()) if item.client_id == client_id), None)


def is_handled(inputs: FollowupInputs, kind: ListKind, client_id: int) -> bool:
    """Marked handled, and the client has had no event since: a new event puts the item back."""
    marked = inputs.marks.get((client_id, kind))
    if marked is None:
        return False
    last = inputs.last_events.get(client_id)
    return last is None or last <= marked


def _ordered(kind: ListKind, items: list[FollowupItem]) -> tuple[FollowupItem, ...]:
    """Who waits longest first; on the other lists the freshest first (a lead or a no-show cools fast,
    and a regular just past due comes back more readily than one long gone)."""
    longest_first = kind is ListKind.UNANSWERED
    return tuple(sorted(items, key=lambda item: (item.since, item.client_id), reverse=not longest_first))


def _dialable(phone: str | None) -> str | None:
    """A stored phone identity (its digits) as a number to call: +79171234567."""
    return phone if phone is None or phone.startswith("+") else f"+{phone}"


def _item(kind: ListKind, candidate: Candidate, inputs: FollowupInputs) -> FollowupItem | None:
    facts = inputs.clients.get(candidate.client_id)
    if facts is None:  # erased between the list's query and this one
        return None
    return FollowupItem(
        kind=kind,
        client_id=candidate.client_id,
        user_ids=facts.user_ids,
        name=facts.name,
        phone=_dialable(facts.phone),
        channel=candidate.channel,
        since=candidate.since,
        event=candidate.event,
        message=candidate.message,
    )


def compose(inputs: FollowupInputs) -> FollowupLists:
    """The lists from what storage found: handled items left out, each client once per list, in order."""
    lists: dict[ListKind, tuple[FollowupItem, ...]] = {}
    for kind in ListKind:
        items: dict[int, FollowupItem] = {}
        for candidate in inputs.candidates.get(kind, ()):
            if candidate.client_id in items or is_handled(inputs, kind, candidate.client_id):
                continue
            if (item := _item(kind, candidate, inputs)) is not None:
                items[item.client_id] = item
        lists[kind] = _ordered(kind, list(items.values()))
    return FollowupLists(inputs.now, lists)


@dataclass(frozen=True, slots=True)
class Rescue:
    """Items marked handled in a period, and of them the clients who booked within ``RESCUE_WINDOW``."""

    handled: int
    rescued: int


def rescue(handled: HandledFollowups) -> Rescue:
    """How many items were handled, and how many distinct clients of them booked within the window after
    their handling."""
    rescued = {
        client_id
        for client_id, at in handled.marks
        if any(at < booked <= at + RESCUE_WINDOW for booked in handled.bookings.get(client_id, ()))
    }
    return Rescue(len(handled.marks), len(rescued))
