"""identities: links between user ids and the values they share, values that stopped linking, phones in E.164

identity_links records every user id seen with a crm_id, lead_id or phone (storage.clients counts a value's
users there and splits clients from it), blocked_identities the values shared by too many user ids,
identity_epoch tells writers when clients changed elsewhere, and ix_events_client_user (client_id,
user_id, event, ts) replaces ix_events_client_ts (client_id, ts, event, user_id): the report's look-backs
(storage.report_columns) seek one user's events of one kind instead of walking the client's history,
and an insert still writes one entry into one b-tree ordered by client.

The data already stored is brought under the same rules, at their defaults (the config is not known
here): phone identities become E.164 (read in RU when they have no country code); fillers and impossible
phones stop being identities; the links are filled from the stored events; a value with more than 5 user
ids is blocked; and every client formed through what stopped linking is split back into what its other
ids make. When two clients turn out to hold the same phone now, the older keeps it; the next event
with that phone joins them. It takes one pass over events (about 5 s per million on SQLite) plus the
splitting, which is quick unless a store had most of its clients merged through one shared value.

Revision ID: 0011_identities
Revises: 0010_followups
Create Date: 2026-12-06
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from storage.identity_groups import chunks, regroup, stop_linking
from storage.identity_policy import LINKING_FIELDS, IdentityPolicy
from storage.phones import normalize_phone

revision: str = "0011_identities"
down_revision: str | None = "0010_followups"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_identities = sa.table(
    "client_identities",
    sa.column("id", sa.Integer),
    sa.column("client_id", sa.Integer),
    sa.column("kind", sa.String),
    sa.column("value", sa.String),
)
_links = sa.table(
    "identity_links",
    sa.column("user_id", sa.String),
    sa.column("kind", sa.String),
    sa.column("value", sa.String),
    sa.column("linking", sa.Boolean),
    sa.column("first_seen_at", sa.DateTime(timezone=True)),
)


def _create_tables() -> None:
    op.create_table(
        "identity_links",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=256), nullable=False),
        sa.Column("linking", sa.Boolean(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("value", "kind", "user_id", name="uq_identity_links_value_kind_user"),
    )
    op.create_index("ix_identity_links_user", "identity_links", ["user_id"])
    op.create_table(
        "blocked_identities",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=256), nullable=False),
        sa.Column("blocked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("value", "kind", name="uq_blocked_identities_value_kind"),
    )
    epoch = op.create_table(
        "identity_epoch",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(epoch, [{"id": 1, "epoch": 0}])
    op.drop_index("ix_events_client_ts", table_name="events")
    op.create_index("ix_events_client_user", "events", ["client_id", "user_id", "event", "ts"])


def _e164(old: str) -> str | None:
    """A phone identity as the regex kept it (digits, 8… and 9… made 7…): read as a Russian number when it
    is one, else as a number with its country code."""
    return normalize_phone(old) or normalize_phone("+" + old)


def _convert_phones(conn: sa.Connection, policy: IdentityPolicy) -> set[int]:
    """Phone identities to E.164; returns the clients that lost one (impossible, a filler, or a twin)."""
    taken: set[str] = set()
    renames: list[dict[str, object]] = []
    dropped: list[int] = []
    affected: set[int] = set()
    phones = conn.execute(
        sa.select(_identities.c.id, _identities.c.client_id, _identities.c.value)
        .where(_identities.c.kind == "phone")
        .order_by(_identities.c.client_id, _identities.c.id)
    )
    for row_id, client_id, old in phones:
        new = _e164(old)
        if new is None or new in taken or policy.value_of("phone", new) != new:
            dropped.append(row_id)
            affected.add(client_id)
        else:
            taken.add(new)
            renames.append({"row_id": row_id, "new": new})
    for part in chunks(dropped):
        conn.execute(sa.delete(_identities).where(_identities.c.id.in_(part)))
    if renames:
        conn.execute(
            sa.update(_identities)
            .where(_identities.c.id == sa.bindparam("row_id"))
            .values(value=sa.bindparam("new")),
            renames,
        )
    return affected


def _drop_fillers(conn: sa.Connection, policy: IdentityPolicy) -> set[int]:
    """CRM and lead ids that never link now ("0", "null", "0000"…); returns the clients that had one."""
    found = conn.execute(
        sa.select(_identities.c.id, _identities.c.client_id, _identities.c.kind, _identities.c.value).where(
            _identities.c.kind.in_([kind for kind, _ in LINKING_FIELDS if kind != "phone"])
        )
    )
    fillers = [
        (row_id, client_id)
        for row_id, client_id, kind, value in found
        if policy.value_of(kind, value) != value
    ]
    for part in chunks([row_id for row_id, _ in fillers]):
        conn.execute(sa.delete(_identities).where(_identities.c.id.in_(part)))
    return {client_id for _, client_id in fillers}


def _fill_links(conn: sa.Connection, policy: IdentityPolicy) -> None:
    """Every (user id, value) the stored events show, in one pass over them."""
    events = sa.table(
        "events",
        *(sa.column(name, sa.String) for name in ("user_id", "crm_id", "lead_id", "phone")),
        sa.column("received_at", sa.DateTime(timezone=True)),
    )
    given = [events.c[field] for _, field in LINKING_FIELDS]
    seen = conn.execute(
        sa.select(events.c.user_id, *given, sa.func.min(events.c.received_at))
        .where(sa.or_(*(column.is_not(None) for column in given)))
        .group_by(events.c.user_id, *given)
    )
    links: dict[tuple[str, str, str], datetime] = {}
    for user_id, *values, first_seen in seen:
        first_seen = first_seen if isinstance(first_seen, datetime) else datetime.fromisoformat(first_seen)
        for (kind, _), raw in zip(LINKING_FIELDS, values, strict=True):
            if (value := policy.value_of(kind, raw)) is not None:
                key = (user_id, kind, value)
                links[key] = min(links.get(key, first_seen), first_seen)
    rows = [
        {"user_id": user, "kind": kind, "value": value, "linking": True, "first_seen_at": moment}
        for (user, kind, value), moment in links.items()
    ]
    for part in chunks(rows):
        conn.execute(sa.insert(_links), list(part))


def upgrade() -> None:
    _create_tables()
    conn = op.get_bind()
    policy = IdentityPolicy()
    affected = _convert_phones(conn, policy) | _drop_fillers(conn, policy)
    _fill_links(conn, policy)
    users = sa.func.count()
    shared = conn.execute(
        sa.select(_links.c.kind, _links.c.value)
        .group_by(_links.c.kind, _links.c.value)
        .having(users > policy.max_users_per_value)
    ).all()
    split = set(stop_linking(conn, [(kind, value) for kind, value in shared], policy, datetime.now(UTC)))
    for client_id in sorted(affected - split):
        regroup(conn, client_id, policy)


def downgrade() -> None:
    # Phone identities back to the digits the regex kept; clients split since stay split.
    op.execute("UPDATE client_identities SET value = substr(value, 2) WHERE kind = 'phone'")
    op.drop_index("ix_events_client_user", table_name="events")
    op.create_index("ix_events_client_ts", "events", ["client_id", "ts", "event", "user_id"])
    op.drop_table("identity_epoch")
    op.drop_table("blocked_identities")
    op.drop_index("ix_identity_links_user", table_name="identity_links")
    op.drop_table("identity_links")
