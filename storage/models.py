"""The database schema. Times are UTC; SQLite keeps them as ISO text, PostgreSQL as timestamptz."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite's rowid is only an alias of the primary key for a plain INTEGER column.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, whatever the backend keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; convert to UTC first")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def sqlite_datetime(moment: datetime) -> str:
    """UTC as 'YYYY-MM-DD HH:MM:SS.ffffff': what SQLAlchemy's SQLite DateTime stores and parses, for
    the paths that hand values to the driver themselves."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class Client(Base):
    """One person, however many channels and CRM records they appear under."""

    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[datetime]
    name: Mapped[str | None] = mapped_column(String(256))
    # Case-folded in Python: SQLite cannot fold Cyrillic, and owners search by part of a name.
    search_name: Mapped[str | None] = mapped_column(String(256))


class ClientIdentity(Base):
    """One way to recognise a client: a channel user id, a CRM id, a lead id or a phone."""

    __tablename__ = "client_identities"
    __table_args__ = (
        UniqueConstraint("value", "kind", name="uq_client_identities_value_kind"),
        Index("ix_client_identities_client", "client_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(256))
    first_seen_at: Mapped[datetime]


class IdentityLink(Base):
    """A user id seen with a crm_id, lead_id or phone: the edges clients are made of (storage.clients).

    Kept for every value that may link, shared too widely or not, so the users of a value can be counted
    and a client split back into what its other ids make. ``linking`` is false for the ids an operator
    separated by hand (``leadtrail client unlink``): that user id no longer joins through them.
    """

    __tablename__ = "identity_links"
    __table_args__ = (
        UniqueConstraint("value", "kind", "user_id", name="uq_identity_links_value_kind_user"),
        Index("ix_identity_links_user", "user_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(256))
    linking: Mapped[bool] = mapped_column(Boolean, default=True)
    first_seen_at: Mapped[datetime]


class BlockedIdentity(Base):
    """A value carried by more user ids than ``identity.max_users_per_value``: it stopped linking for good."""

    __tablename__ = "blocked_identities"
    __table_args__ = (UniqueConstraint("value", "kind", name="uq_blocked_identities_value_kind"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(256))
    blocked_at: Mapped[datetime]
    notified_at: Mapped[datetime | None]  # when the owners were told (bot.runtime.jobs.identities)


class IdentityEpoch(Base):
    """One row (id 1) whose number grows whenever clients are split, merged, unlinked, pseudonymised or
    erased, so every writer (another process too) drops the identity cache that may name them."""

    __tablename__ = "identity_epoch"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    epoch: Mapped[int] = mapped_column(BigInteger)


class StoredEvent(Base):
    """One event as received. Indexes are few on purpose: each costs every insert on the hot path."""

    __tablename__ = "events"
    __table_args__ = (
        # A client's events, and within them one user's events of one kind in time order: the writer's
        # look-backs (storage.report_columns) are a seek each, however many user ids share the client and
        # however long a history is. It replaced (client_id, ts, event, user_id), where they walked the
        # client's history (migration 0011_identities): still one b-tree per insert.
        Index("ix_events_client_user", "client_id", "user_id", "event", "ts"),
        # Only the few rows a booking system names: the look-up behind "one appointment, one booking".
        Index(
            "ix_events_appointment",
            "appointment_id",
            "event",
            "ts",
            sqlite_where=text("appointment_id IS NOT NULL"),
            postgresql_where=text("appointment_id IS NOT NULL"),
        ),
        # The columns after (event, ts) let the report read a period from the index alone (migrations
        # 0007_report_speed, 0008_report_columns, 0012_yclients).
        Index(
            "ix_events_event_ts",
            "event",
            "ts",
            "client_id",
            "user_id",
            "channel",
            "location",
            "response_time_ms",
            "intent",
            "reason",
            "status",
            "amount",
            "reply_to_ts",
            "appointment_id",
        ),
        # Model calls only (a partial index: other events pay nothing for it): the AI cost of a period,
        # the month's spend for the budget alert and the unpriced models, read from the index alone.
        Index(
            "ix_events_model_ts",
            "ts",
            "model",
            "cost",
            "currency",
            "input_tokens",
            "output_tokens",
            "location",
            sqlite_where=text("model IS NOT NULL"),
            postgresql_where=text("model IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(128), unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    ts: Mapped[datetime]
    received_at: Mapped[datetime]
    event: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(128))
    actor: Mapped[str] = mapped_column(String(16))
    crm_id: Mapped[str | None] = mapped_column(String(256))
    lead_id: Mapped[str | None] = mapped_column(String(256))
    phone: Mapped[str | None] = mapped_column(String(256))
    name: Mapped[str | None] = mapped_column(String(256))
    manager_id: Mapped[str | None] = mapped_column(String(256))
    location: Mapped[str | None] = mapped_column(String(256))
    scenario: Mapped[str | None] = mapped_column(String(256))
    service: Mapped[str | None] = mapped_column(String(256))
    intent: Mapped[str | None] = mapped_column(String(256))
    action: Mapped[str | None] = mapped_column(String(256))
    reason: Mapped[str | None] = mapped_column(String(256))
    status: Mapped[str | None] = mapped_column(String(256))
    currency: Mapped[str | None] = mapped_column(String(256))
    message: Mapped[str | None] = mapped_column(Text)
    assistant_response: Mapped[str | None] = mapped_column(Text)
    prompt: Mapped[str | None] = mapped_column(Text)
    confidence: Mapped[float | None] = mapped_column(Float)
    response_time_ms: Mapped[int | None] = mapped_column(BigInteger)
    amount: Mapped[float | None] = mapped_column(Float)
    appointment_at: Mapped[datetime | None]
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    extra: Mapped[dict[str, Any] | None]
    model: Mapped[str | None] = mapped_column(String(256))
    provider: Mapped[str | None] = mapped_column(String(256))
    input_tokens: Mapped[int | None] = mapped_column(BigInteger)
    output_tokens: Mapped[int | None] = mapped_column(BigInteger)
    cached_tokens: Mapped[int | None] = mapped_column(BigInteger)
    cost: Mapped[float | None] = mapped_column(Float)
    # The booking system's record id: bookings that carry the same one are one booking (storage.bookings).
    appointment_id: Mapped[str | None] = mapped_column(String(128))
    # Kept by the writer from the user's other events (storage.report_columns), never received: the
    # report reads it instead of looking back into each user's history on every run.
    reply_to_ts: Mapped[datetime | None]  # an answer: the user's latest message at or before it


# Columns worked out from the user's other events as the rows are stored; not part of what a source sent.
DERIVED_EVENT_COLUMNS = ("reply_to_ts",)
# Every column that holds what was received (or where it belongs: client_id, received_at), in table order.
RECEIVED_EVENT_COLUMNS = tuple(
    column.name
    for column in StoredEvent.__table__.columns
    if column.name != "id" and column.name not in DERIVED_EVENT_COLUMNS
)


class QuarantinedPayload(Base):
    """A rejected item with the reasons, kept (bounded) so an operator can see what a source sends wrong."""

    __tablename__ = "quarantine"
    __table_args__ = (Index("ix_quarantine_received_at", "received_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    received_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(64))
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    payload: Mapped[str] = mapped_column(Text)
    payload_bytes: Mapped[int] = mapped_column(Integer)


class OwnerAudit(Base):
    """Who of the owners looked at or did what, and when (not what they saw)."""

    __tablename__ = "owner_audit"
    __table_args__ = (Index("ix_owner_audit_at", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime]
    owner_id: Mapped[int] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(64))
    details: Mapped[str | None] = mapped_column(Text)


class OutboxMessage(Base):
    """A report or alert to deliver; kept until sent, so a Telegram outage delays it but never loses it."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_pending", "sent_at", "failed_at", "next_attempt_at"),
        Index("ix_outbox_client", "client_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(256))
    subject: Mapped[str | None] = mapped_column(String(256))
    text: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(256))
    # Which buttons go under the message in Telegram (e.g. the follow-up lists); the sender builds them.
    keyboard: Mapped[str | None] = mapped_column(String(32))
    # The client a message is about (an unanswered client's alert): erased with the client, and its text is
    # blanked once delivered, so the client's words stay only where retention and /forget reach them.
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))


class FollowupMark(Base):
    """A follow-up item (a client in one of the lists) marked handled: by whom and when. It keeps the item
    off its list until the client's next event; the report counts the marks and the bookings after them."""

    __tablename__ = "followup_marks"
    __table_args__ = (
        Index("ix_followup_marks_client", "client_id", "list_kind"),
        Index("ix_followup_marks_at", "handled_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    list_kind: Mapped[str] = mapped_column(String(32))
    since: Mapped[datetime]  # the moment that put the item on its list
    handled_at: Mapped[datetime]
    handled_by: Mapped[int] = mapped_column(BigInteger)  # the Telegram user (owner or staff)


class OutboxAttachment(Base):
    """A picture (chart) that goes with an outbox message, in order."""

    __tablename__ = "outbox_attachments"
    __table_args__ = (Index("ix_outbox_attachments_message", "message_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("outbox.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str] = mapped_column(String(128))
    content: Mapped[bytes] = mapped_column(LargeBinary)


class JobRun(Base):
    """One run of a scheduled job for one key (e.g. the daily report of one day): claimed once, ever."""

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("job", "run_key", name="uq_job_runs_job_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job: Mapped[str] = mapped_column(String(64))
    run_key: Mapped[str] = mapped_column(String(64))
    claimed_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class AlertState(Base):
    """Where each alert rule stands per scope: firing or not, when it last spoke, muted until when."""

    __tablename__ = "alert_state"
    __table_args__ = (UniqueConstraint("rule", "scope", name="uq_alert_state_rule_scope"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rule: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(128))
    firing: Mapped[bool] = mapped_column(Boolean, default=False)
    since: Mapped[datetime | None]
    last_sent_at: Mapped[datetime | None]
    muted_until: Mapped[datetime | None]
    last_value: Mapped[float | None] = mapped_column(Float)


class AlertLogEntry(Base):
    """Every alert and every "resolved" that was sent, for /alerts."""

    __tablename__ = "alert_log"
    __table_args__ = (Index("ix_alert_log_at", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime]
    rule: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)


class BiSettings(Base):
    """The zone the BI views (storage/bi_views.py) count local days in: one row (id 1), set on start."""

    __tablename__ = "bi_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    timezone: Mapped[str] = mapped_column(String(64))
    utc_offset_minutes: Mapped[int] = mapped_column(Integer)


class CrmJob(Base):
    """One call to make to the CRM (create/link a lead, post a comment, fetch a changed entity).

    Kept until done or given up, so a CRM outage or rate limit delays the work but never loses it.
    ``dedup_key`` makes enqueueing idempotent (one lead job per client, however often it is asked for).
    """

    __tablename__ = "crm_jobs"
    __table_args__ = (Index("ix_crm_jobs_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(32))
    dedup_key: Mapped[str | None] = mapped_column(String(160), unique=True)
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(256))


class CrmLinkState(Base):
    """The CRM worker's one row: how far it has read the events table, and when the CRM last answered."""

    __tablename__ = "crm_link_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    events_cursor: Mapped[int] = mapped_column(BigInteger)
    last_success_at: Mapped[datetime | None]


class PendingSpan(Base):
    """A model call received over OTLP whose trace has not named its user yet (``bot.ingestion.trace_wait``).

    Kept from the moment it is acknowledged until its trace's user arrives or ``ai.trace_wait_seconds``
    pass, so what was answered 200 survives a restart. ``fields`` is the event as mapped from the span,
    without ``user_id``.
    """

    __tablename__ = "pending_spans"
    __table_args__ = (Index("ix_pending_spans_received_at", "received_at"),)

    trace_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    span_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    received_at: Mapped[datetime]
    fields: Mapped[dict[str, Any]]


class TraceUser(Base):
    """The user a trace named on a span that is not itself stored as an event (the handler's span), kept
    for ``ai.trace_wait_seconds`` for the trace's model calls that arrive later. ``rank`` is the attribute's
    place in the order of user attributes: a lower one wins."""

    __tablename__ = "trace_users"
    __table_args__ = (Index("ix_trace_users_seen_at", "seen_at"),)

    trace_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128))
    rank: Mapped[int] = mapped_column(Integer)
    seen_at: Mapped[datetime]


class YclientsLink(Base):
    """One row per company: when its webhooks last arrived and how its reconciliation went."""

    __tablename__ = "yclients_link"

    company_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    last_webhook_at: Mapped[datetime | None]
    synced_until: Mapped[datetime | None]
    last_sync_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(256))
