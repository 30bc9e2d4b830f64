"""What the follow-up lists (``reports.followup``) are computed from: the four lists, the windows their
queries read and the plain values ``storage.followup_queries`` returns, importable without SQLAlchemy."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

# A handled client counts as rescued when they booked within this long after the handling.
RESCUE_WINDOW = timedelta(days=7)


class ListKind(StrEnum):
    """The four follow-up lists, in the order owners read them; the values are the JSON keys."""

    UNANSWERED = "unanswered"
    LEADS_WITHOUT_BOOKING = "leads_without_booking"
    NO_SHOWS = "no_shows"
    REPEAT_DUE = "repeat_due"


@dataclass(frozen=True, slots=True)
class ListWindow:
    """A list's starting events are read in ``[start, end)``; with ``due_by``, a client's latest such
    event must be at or before it (a younger one means they are not due yet)."""

    start: datetime
    end: datetime
    due_by: datetime | None = None


@dataclass(frozen=True, slots=True)
class FollowupWindows:
    """Where each list looks at the moment ``now`` (UTC); nothing at or after ``now`` is read."""

    now: datetime
    unanswered: ListWindow
    leads_without_booking: ListWindow
    no_shows: ListWindow
    repeat_due: ListWindow


@dataclass(frozen=True, slots=True)
class Candidate:
    """A client a list's query found: the event that put them there (when, which, on what channel) and,
    for a waiting client, their message."""

    client_id: int
    since: datetime
    event: str
    channel: str
    message: str | None = None


@dataclass(frozen=True, slots=True)
class ClientFacts:
    """Who a client is: their name, user ids (oldest first) and first phone (E.164)."""

    name: str | None
    user_ids: tuple[str, ...]
    phone: str | None


@dataclass(frozen=True)
class FollowupInputs:
    """Everything the lists are made of at ``now``: the candidates of each list, who they are, the latest
    handled mark of each (client, list) and the latest event before ``now`` of each marked client."""

    now: datetime
    candidates: dict[ListKind, tuple[Candidate, ...]]
    clients: dict[int, ClientFacts]
    marks: dict[tuple[int, ListKind], datetime] = field(default_factory=dict)
    last_events: dict[int, datetime] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HandledFollowups:
    """Items marked handled in a period (client, when) and those clients' bookings that came after."""

    marks: tuple[tuple[int, datetime], ...] = ()
    bookings: dict[int, tuple[datetime, ...]] = field(default_factory=dict)
