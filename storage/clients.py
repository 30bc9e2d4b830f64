"""Linking events to clients: the ids an event reveals (user id, CRM id, lead id, phone) name one person.

Runs inside the writer's transaction. Every user id seen with a crm_id, lead_id or phone is recorded as
a link (``identity_links``); a value joins the user ids that carry it into one client, and when one
event joins ids that belonged to two clients they are merged into the older one, so a client is found
by any of their ids. Fillers never link (``storage.identity_policy``), and a value carried by more than
``max_users_per_value`` user ids stops linking for good: an integration sending its test values for
everyone would otherwise make the whole client base one client (and one union of thousands of ids per
batch). The clients formed through it are split back (``storage.identity_groups``).

The cache in front of it is per writer; ``identity_epoch`` tells a writer when anyone (another process
too) split, merged, unlinked, pseudonymised or erased clients, so it starts afresh.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.engine import Connection

from storage.event_ids import stored_event_ids
from storage.event_row import EventRow
from storage.identity_groups import READ_EPOCH, Groups, bump_epoch, chunks, stop_linking
from storage.identity_policy import USER, Identity, IdentityPolicy
from storage.models import (
    BlockedIdentity,
    Client,
    ClientIdentity,
    FollowupMark,
    IdentityLink,
    OutboxMessage,
    StoredEvent,
)
from storage.upsert import insert_ignoring_conflicts

Link = tuple[str, Identity]  # (user_id, value)
Sender = tuple[str, tuple[Identity, ...]]  # a user id and the values its event carries

# PostgreSQL keeps every advisory lock of a transaction in a shared table of about 64 × max_connections
# entries: one lock per identity made a batch of 5,000 new clients fail with "out of shared memory". So
# identities share a fixed number of locks (two 32-bit keys: a space of our own, then the slot); a
# collision only makes two writers take turns.
LOCK_SLOTS = 512
IDENTITY_LOCKS, HISTORY_LOCKS = 1, 2  # lock spaces, taken in this order within a transaction


def lock_slot(key: Identity) -> int:
    digest = hashlib.blake2b(f"{key[0]}\0{key[1]}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % LOCK_SLOTS


def lock_identities(conn: Connection, keys: Iterable[Identity], space: int = IDENTITY_LOCKS) -> None:
    """Several processes on one PostgreSQL: whoever sees an identity first creates its client (or counts
    a value's users), the others wait here until that commits and then find it (READ COMMITTED reads it
    in the next statement), so one person never becomes two clients. Locks are taken once per
    transaction, in slot order, one space after the other, so two writers never deadlock, and end with
    the transaction."""
    slots = sorted({lock_slot(key) for key in keys})
    conn.execute(
        # A function scan yields the array in order, and each row takes its lock before the next.
        text("SELECT pg_advisory_xact_lock(:space, s) FROM unnest(CAST(:slots AS integer[])) AS s"),
        {"space": space, "slots": slots},
    )


def _survivor(merged: dict[int, int], client_id: int) -> int:
    while client_id in merged:
        client_id = merged[client_id]
    return client_id


def _identities_with_values(conn: Connection, values: list[str]) -> Iterable[tuple[str, str, int]]:
    """(kind, value, client_id) of the stored identities with these values.

    SQLite: driver SQL, since the writer looks up every new sender's ids and building the IN select each
    time cost it more than SQLite's index look-up (a seventh of a single-event commit).
    """
    if conn.dialect.name == "sqlite":
        marks = ", ".join("?" * len(values))
        return conn.exec_driver_sql(
            f"SELECT kind, value, client_id FROM client_identities WHERE value IN ({marks})", tuple(values)
        )
    table = ClientIdentity.__table__
    return conn.execute(
        select(table.c.kind, table.c.value, table.c.client_id).where(table.c.value.in_(values))
    )


def _stored_links(conn: Connection, values: list[Identity]) -> dict[Identity, dict[str, bool]]:
    """For each value, the user ids recorded with it and whether that link joins."""
    wanted = set(values)
    found: dict[Identity, dict[str, bool]] = {value: {} for value in values}
    link = IdentityLink.__table__.c
    for part in chunks(sorted({value for _, value in values})):
        rows = conn.execute(
            select(link.kind, link.value, link.user_id, link.linking).where(link.value.in_(part))
        )
        for kind, value, user, linking in rows:
            if (kind, value) in wanted:
                found[(kind, value)][user] = bool(linking)
    return found


class ClientResolver:
    """Maps identities to client ids, with bounded caches in front of ``client_identities`` and
    ``identity_links``, and of what each sender (a user id with the ids its events carry) resolved to."""

    def __init__(self, cache_size: int = 200_000) -> None:
        self._cache: OrderedDict[Identity, int] = OrderedDict()
        self._senders: OrderedDict[Sender, int] = OrderedDict()
        self._links: OrderedDict[Link, bool] = OrderedDict()
        self._blocked: set[Identity] = set()
        self._names: dict[int, str] = {}
        self._cache_size = cache_size
        self._epoch: int | None = None

    def forget(self) -> None:
        """Drop the caches (after a rollback they may name clients or links that do not exist)."""
        self._forget_clients()
        self._links.clear()
        self._blocked.clear()
        self._epoch = None

    def _forget_clients(self) -> None:
        self._cache.clear()
        self._senders.clear()
        self._names.clear()

    def _remember(self, key: Identity, client_id: int) -> None:
        self._cache[key] = client_id
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _remember_link(self, link: Link, joins: bool) -> None:
        self._links[link] = joins
        if len(self._links) > self._cache_size:
            self._links.popitem(last=False)

    def _remember_sender(self, sender: Sender, client_id: int) -> None:
        self._senders[sender] = client_id
        if len(self._senders) > self._cache_size:
            self._senders.popitem(last=False)

    def _sync_epoch(self, conn: Connection) -> None:
        """Start afresh when clients changed outside this writer since its last transaction."""
        epoch = int(conn.exec_driver_sql(READ_EPOCH).scalar() or 0)
        if epoch == self._epoch:
            return
        self.forget()
        blocked = BlockedIdentity.__table__.c
        self._blocked = {(kind, value) for kind, value in conn.execute(select(blocked.kind, blocked.value))}
        self._epoch = epoch

    def _changed_clients(self, conn: Connection) -> None:
        """This transaction merged or split clients: tell the other writers, keep our own links."""
        epoch = bump_epoch(conn)
        self._forget_clients()
        # Unless another writer bumped it meanwhile, what this one knows is all there is to know.
        self._epoch = epoch if self._epoch is not None and epoch == self._epoch + 1 else None

    def _lookup(self, conn: Connection, keys: Iterable[Identity]) -> dict[Identity, int]:
        found: dict[Identity, int] = {}
        missing: list[Identity] = []
        for key in keys:
            cached = self._cache.get(key)
            if cached is None:
                missing.append(key)
            else:
                found[key] = cached
        wanted = set(missing)
        values = sorted({value for _, value in missing})
        for part in chunks(values):
            for kind, value, client_id in _identities_with_values(conn, list(part)):
                if (kind, value) in wanted:
                    found[(kind, value)] = client_id
                    self._remember((kind, value), client_id)
        return found

    def resolve(
        self, conn: Connection, rows: list[EventRow], now: datetime, policy: IdentityPolicy
    ) -> list[EventRow]:
        """Set ``client_id`` on the rows to store, creating, linking, merging and splitting clients as they
        reveal, and return them: every row but the stored events of senders not seen before. A resent
        event must not link: a new user_id on it would make a client with no events, a new crm_id would
        merge two. A sender seen before changes nothing, so only new senders' events are looked up."""
        self._sync_epoch(conn)
        # The events of one user id with the same ids are one sender, settled once: a sender seen before
        # is one look-up, and a batch holds far fewer new senders than events.
        known = self._senders
        settled: list[tuple[Sender, EventRow]] = []
        senders: dict[Sender, list[EventRow]] = {}
        for row in rows:
            sender = (row["user_id"], policy.values_of(row))
            if (client_id := known.get(sender)) is not None:
                row["client_id"] = client_id
                settled.append((sender, row))
            else:
                senders.setdefault(sender, []).append(row)
        resent = stored_event_ids(conn, [row["event_id"] for found in senders.values() for row in found])
        if resent:
            rows = [row for row in rows if row["event_id"] not in resent]
            senders = {
                sender: kept
                for sender, found in senders.items()
                if (kept := [row for row in found if row["event_id"] not in resent])
            }
        if senders:
            self._resolve_senders(conn, senders, now, policy)
            # The new senders merged or split clients: the rows settled from the cache are settled again.
            stale: dict[Sender, list[EventRow]] = {}
            for sender, row in settled:
                if sender not in known:
                    stale.setdefault(sender, []).append(row)
            if stale:  # their ids are all stored, so no identity lock is needed (and none taken twice)
                self._resolve_senders(conn, stale, now, policy, lock=False)
        self._update_names(conn, rows)
        return rows

    def _resolve_senders(
        self,
        conn: Connection,
        senders: dict[Sender, list[EventRow]],
        now: datetime,
        policy: IdentityPolicy,
        *,
        lock: bool = True,
    ) -> None:
        """Settle the senders not in the cache, and remember them."""
        if lock and conn.dialect.name == "postgresql" and (unknown := self._unknown_keys(senders)):
            lock_identities(conn, unknown)
        joins = self._record_links(conn, senders, now, policy)
        keys = {
            sender: [(USER, sender[0]), *(value for value in sender[1] if joins[(sender[0], value)])]
            for sender in senders
        }
        clients = self._from_cache(keys)
        if unsettled := {sender: found for sender, found in keys.items() if sender not in clients}:
            settled_before = list(clients)
            merged = self._resolve_unsettled(conn, unsettled, now, clients)
            # A sender settled from the cache may name a client that was just merged away. Only those:
            # SQLite may hand a merged-away id to a client created in this same batch.
            for sender in settled_before if merged else ():
                clients[sender] = _survivor(merged, clients[sender])
        for sender, events in senders.items():
            client_id = clients[sender]
            self._remember_sender(sender, client_id)
            for row in events:
                row["client_id"] = client_id

    def _known(self, user: str, value: Identity) -> bool:
        """The link is known, and so is the client of the value when it joins."""
        joins = self._links.get((user, value))
        return joins is not None and (not joins or value in self._blocked or value in self._cache)

    def _unknown_keys(self, senders: Iterable[Sender]) -> set[Identity]:
        """The ids of every sender this writer does not know all about (a blocked value is not counted
        any more, so needs no lock): the identity locks to take, all at once."""
        keys: set[Identity] = set()
        for user, found in senders:
            if (USER, user) not in self._cache or not all(self._known(user, value) for value in found):
                keys.add((USER, user))
                keys.update(value for value in found if value not in self._blocked)
        return keys

    def _record_links(
        self, conn: Connection, senders: Iterable[Sender], now: datetime, policy: IdentityPolicy
    ) -> dict[Link, bool]:
        """Record the senders' new links, stop the values they make too widely shared, and say for every
        link of the senders whether it joins."""
        joins: dict[Link, bool] = {}
        new: dict[Link, None] = {}
        for user, found in senders:
            for value in found:
                link = (user, value)
                known = self._links.get(link)
                if known is None:
                    new[link] = None
                else:
                    joins[link] = known and value not in self._blocked
        if not new:
            return joins
        counted = sorted({value for _, value in new if value not in self._blocked})
        stored = _stored_links(conn, counted)
        users = {value: set(stored[value]) for value in counted}
        for user, value in new:
            if value in users:
                users[value].add(user)
        too_shared = [
            value for value, carriers in users.items() if len(carriers) > policy.max_users_per_value
        ]
        fresh = [(user, value) for user, value in new if user not in stored.get(value, {})]
        if fresh:
            conn.execute(
                insert_ignoring_conflicts(conn, IdentityLink, ["value", "kind", "user_id"]),
                [
                    {"user_id": user, "kind": kind, "value": value, "linking": True, "first_seen_at": now}
                    for user, (kind, value) in fresh
                ],
            )
        if too_shared:
            stop_linking(conn, too_shared, policy, now)
            self._blocked.update(too_shared)
            self._changed_clients(conn)
            # The links known before may have joined through what was just blocked.
            joins = {link: joined and link[1] not in self._blocked for link, joined in joins.items()}
        for link in new:
            user, value = link
            joined = stored.get(value, {}).get(user, True)
            self._remember_link(link, joined)
            joins[link] = joined and value not in self._blocked
        return joins

    def _from_cache(self, keys: dict[Sender, list[Identity]]) -> dict[Sender, int]:
        """The senders whose ids are all known and name one client, with that client."""
        settled: dict[Sender, int] = {}
        cache = self._cache
        for sender, found in keys.items():
            client_ids = {cache.get(key) for key in found}
            if len(client_ids) == 1 and (known := client_ids.pop()) is not None:
                settled[sender] = known
        return settled

    def _resolve_unsettled(
        self, conn: Connection, keys: dict[Sender, list[Identity]], now: datetime, clients: dict[Sender, int]
    ) -> dict[int, int]:
        """Union-find over the senders' ids, their clients into ``clients``; returns the clients merged
        away, each mapped to its survivor."""
        groups: Groups[Identity] = Groups()
        for found in keys.values():
            groups.union(found)
        known = self._lookup(conn, groups.parent.keys())
        members = groups.members()

        client_of_group: dict[Identity, int] = {}
        merged: dict[int, int] = {}
        new_groups: list[Identity] = []
        for root, group in members.items():
            existing = sorted({_survivor(merged, known[key]) for key in group if key in known})
            if not existing:
                new_groups.append(root)
                continue
            client_of_group[root] = existing[0]
            if len(existing) > 1:
                self._merge(conn, existing[0], existing[1:])
                merged.update(dict.fromkeys(existing[1:], existing[0]))
        if merged:
            self._changed_clients(conn)
        # A group settled before a later merge may still name a client that is gone now.
        client_of_group = {root: _survivor(merged, client_id) for root, client_id in client_of_group.items()}

        if new_groups:
            result = conn.execute(
                insert(Client).returning(Client.id, sort_by_parameter_order=True),
                [{"created_at": now} for _ in new_groups],
            )
            for root, client_id in zip(new_groups, result.scalars(), strict=True):
                client_of_group[root] = client_id

        new_keys = [(key, client_of_group[groups.find(key)]) for key in groups.parent if key not in known]
        if new_keys:
            conn.execute(
                insert_ignoring_conflicts(conn, ClientIdentity, ["value", "kind"]),
                [
                    {"client_id": client_id, "kind": kind, "value": value, "first_seen_at": now}
                    for (kind, value), client_id in new_keys
                ],
            )
            for key, client_id in new_keys:
                self._remember(key, client_id)

        for sender, found in keys.items():
            clients[sender] = client_of_group[groups.find(found[0])]
        return merged

    def _merge(self, conn: Connection, survivor: int, others: list[int]) -> None:
        # Everything that names a client moves to the survivor, or deleting the others would cascade to it.
        for model in (StoredEvent, ClientIdentity, FollowupMark, OutboxMessage):
            conn.execute(update(model).where(model.client_id.in_(others)).values(client_id=survivor))
        conn.execute(delete(Client).where(Client.id.in_(others)))

    def _update_names(self, conn: Connection, rows: list[EventRow]) -> None:
        latest: dict[int, str] = {}
        for row in rows:
            if name := row["name"]:
                latest[row["client_id"]] = name
        changed = {cid: name for cid, name in latest.items() if self._names.get(cid) != name}
        for client_id, name in changed.items():
            conn.execute(
                update(Client).where(Client.id == client_id).values(name=name, search_name=name.casefold())
            )
            self._names[client_id] = name
