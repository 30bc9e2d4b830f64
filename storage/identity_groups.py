"""User ids grouped into clients by the values they share, and clients split again when a value stops
linking: it turned out to be shared too widely, or an operator separated a user id by hand.

A client is a connected group in the graph of ``identity_links`` (user id — crm_id / lead_id / phone),
counting only the links that still join: not through a blocked value, not through a link an operator
undid, not through a value the identity settings now call a filler. ``regroup`` recomputes that for one
client and moves every user id outside the group of the client's oldest user id, with its events, to a
client of its own (one per group). A user id keeps its events together, so the report's look-backs,
which are per user id, stay as they are.

Everything here runs in the caller's transaction, on a synchronous connection: the writer's (a value
blocked while a batch is stored), the migration's, or the command line's (``Database.writes.run``).
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from sqlalchemy import and_, bindparam, delete, exists, insert, select, tuple_, update
from sqlalchemy.engine import Connection

from storage.identity_policy import USER, Identity, IdentityPolicy
from storage.models import BlockedIdentity, Client, ClientIdentity, IdentityEpoch, IdentityLink, StoredEvent
from storage.upsert import insert_ignoring_conflicts

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")
CHUNK = 500

BUMP_EPOCH = (
    update(IdentityEpoch).where(IdentityEpoch.id == 1).values(epoch=IdentityEpoch.epoch + 1)
).returning(IdentityEpoch.epoch)
READ_EPOCH = "SELECT epoch FROM identity_epoch WHERE id = 1"


class Groups(Generic[K]):
    """Union-find. Iterative, with union by size: one value may join tens of thousands of keys, and the
    recursive version ran out of stack on such a batch."""

    def __init__(self) -> None:
        self.parent: dict[K, K] = {}
        self._size: dict[K, int] = {}

    def find(self, key: K) -> K:
        parent = self.parent
        root = parent.setdefault(key, key)
        if root == key:
            return key
        while (above := parent[root]) != root:
            root = above
        while key != root:  # path compression: the next find of any of these is one step
            parent[key], key = root, parent[key]
        return root

    def union(self, keys: Sequence[K]) -> None:
        root = self.find(keys[0])
        for key in keys[1:]:
            other = self.find(key)
            if other == root:
                continue
            if self._size.get(other, 1) > self._size.get(root, 1):
                root, other = other, root
            self.parent[other] = root
            self._size[root] = self._size.get(root, 1) + self._size.pop(other, 1)

    def members(self) -> dict[K, list[K]]:
        """Every key under its group's root, in the order the keys were first seen."""
        found: dict[K, list[K]] = {}
        for key in self.parent:
            found.setdefault(self.find(key), []).append(key)
        return found


def chunks(values: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


def bump_epoch(conn: Connection) -> int:
    """Tell every writer that clients changed (its identity cache may name them); returns the new epoch."""
    return int(conn.execute(BUMP_EPOCH).scalar_one())


def _joining_links(
    conn: Connection, users: Sequence[str], policy: IdentityPolicy
) -> list[tuple[str, Identity]]:
    """(user_id, value) of the links of these users that still join: not undone, not blocked, not a filler."""
    blocked = exists().where(
        BlockedIdentity.value == IdentityLink.value, BlockedIdentity.kind == IdentityLink.kind
    )
    found = []
    for part in chunks(users):
        rows = conn.execute(
            select(IdentityLink.user_id, IdentityLink.kind, IdentityLink.value).where(
                IdentityLink.user_id.in_(part), IdentityLink.linking, ~blocked
            )
        )
        found += [
            (user, (kind, value)) for user, kind, value in rows if policy.value_of(kind, value) == value
        ]
    return found


@dataclass(frozen=True, slots=True)
class _Member:
    user_id: str
    first_seen_at: datetime


def _new_client(conn: Connection, members: list[_Member]) -> int:
    created = min(member.first_seen_at for member in members)
    return int(conn.execute(insert(Client).values(created_at=created).returning(Client.id)).scalar_one())


def regroup(
    conn: Connection, client_id: int, policy: IdentityPolicy, leaving: str | None = None
) -> list[int]:
    """Split the client into the groups its user ids' joining links make; returns the clients made.

    The group of the oldest user id keeps the client, unless that is ``leaving`` (the user id an
    operator takes out): then the oldest of the others does.
    """
    identity = ClientIdentity.__table__.c
    stored = conn.execute(
        select(identity.id, identity.kind, identity.value, identity.first_seen_at)
        .where(identity.client_id == client_id)
        .order_by(identity.first_seen_at, identity.id)
    ).all()
    members = [_Member(value, seen) for _, kind, value, seen in stored if kind == USER]
    if len(members) < 2:
        return []
    groups: Groups[Identity] = Groups()
    for member in members:
        groups.find((USER, member.user_id))
    for user, value in _joining_links(conn, [member.user_id for member in members], policy):
        groups.union([(USER, user), value])
    keeper = next(
        (groups.find((USER, m.user_id)) for m in members if m.user_id != leaving),
        groups.find((USER, members[0].user_id)),
    )
    by_group: dict[Identity, list[_Member]] = {}
    for member in members:
        by_group.setdefault(groups.find((USER, member.user_id)), []).append(member)
    made = []
    for root, group in by_group.items():
        if root == keeper:
            continue
        new_id = _new_client(conn, group)
        users = [member.user_id for member in group]
        moving = [row_id for row_id, kind, value, _ in stored if groups.find((kind, value)) == root]
        for part in chunks(moving):
            conn.execute(update(ClientIdentity).where(ClientIdentity.id.in_(part)).values(client_id=new_id))
        for part in chunks(users):
            conn.execute(
                update(StoredEvent)
                .where(StoredEvent.user_id.in_(part), StoredEvent.client_id == client_id)
                .values(client_id=new_id)
            )
        made.append(new_id)
    if made:
        refresh_names(conn, [client_id, *made])
    return made


def refresh_names(conn: Connection, client_ids: Iterable[int]) -> None:
    """Each client's name from the latest of its events that carries one (case-folded for the search)."""
    for client_id in client_ids:
        name = conn.execute(
            select(StoredEvent.name)
            .where(StoredEvent.client_id == client_id, StoredEvent.name.is_not(None))
            .order_by(StoredEvent.ts.desc(), StoredEvent.id.desc())
            .limit(1)
        ).scalar_one_or_none()
        conn.execute(
            update(Client)
            .where(Client.id == client_id)
            .values(name=name, search_name=name.casefold() if name else None)
        )


def clients_with(conn: Connection, values: Collection[Identity]) -> list[int]:
    """The clients these values are identities of."""
    found: set[int] = set()
    ordered = sorted(values)
    for part in chunks(ordered):
        found.update(
            conn.execute(
                select(ClientIdentity.client_id).where(
                    tuple_(ClientIdentity.kind, ClientIdentity.value).in_(part)
                )
            ).scalars()
        )
    return sorted(found)


def stop_linking(
    conn: Connection, values: Collection[Identity], policy: IdentityPolicy, now: datetime
) -> list[int]:
    """These values are shared too widely: record them, let them identify nobody, split the clients they
    joined. Returns the clients that were split."""
    if not values:
        return []
    conn.execute(
        insert_ignoring_conflicts(conn, BlockedIdentity, ["value", "kind"]),
        [{"kind": kind, "value": value, "blocked_at": now} for kind, value in values],
    )
    affected = clients_with(conn, values)
    for part in chunks(sorted(values)):
        conn.execute(
            delete(ClientIdentity).where(tuple_(ClientIdentity.kind, ClientIdentity.value).in_(part))
        )
    for client_id in affected:
        regroup(conn, client_id, policy)
    bump_epoch(conn)
    return affected


@dataclass(frozen=True, slots=True)
class Unlinked:
    """Where ``leadtrail client unlink`` took a user id from, and to."""

    user_id: str
    from_client: int
    to_client: int
    undone: list[Identity]  # the links of this user id that no longer join


def unlink(conn: Connection, user_id: str, policy: IdentityPolicy) -> Unlinked | None:
    """Take one user id, with its events, out of its client into a client of its own; None when unknown.

    Its links to values another user id of the client carries stop joining, now and for its later
    events; values only it carries go with it. ``to_client == from_client`` when it was alone already.
    """
    identity = ClientIdentity.__table__.c
    client_id = conn.execute(
        select(identity.client_id).where(identity.kind == USER, identity.value == user_id)
    ).scalar_one_or_none()
    if client_id is None:
        return None
    others = list(
        conn.execute(
            select(identity.value).where(
                identity.client_id == client_id, identity.kind == USER, identity.value != user_id
            )
        ).scalars()
    )
    if not others:
        return Unlinked(user_id, client_id, client_id, [])
    own = {value for user, value in _joining_links(conn, [user_id], policy) if user == user_id}
    shared = sorted(own & {value for _, value in _joining_links(conn, others, policy)})
    link = IdentityLink.__table__.c
    if shared:
        conn.execute(
            update(IdentityLink)
            .where(
                link.user_id == user_id,
                and_(link.kind == bindparam("of_kind"), link.value == bindparam("of_value")),
            )
            .values(linking=False),
            [{"of_kind": kind, "of_value": value} for kind, value in shared],
        )
    regroup(conn, client_id, policy, leaving=user_id)
    bump_epoch(conn)
    moved_to = conn.execute(
        select(identity.client_id).where(identity.kind == USER, identity.value == user_id)
    ).scalar_one()
    return Unlinked(user_id, client_id, int(moved_to), shared)
