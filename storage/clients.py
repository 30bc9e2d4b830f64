"""Linking events to clients: every id an event reveals (user id, CRM id, lead id, phone) names one person.

Runs inside the writer's transaction. When one event joins ids that belonged to two clients, they are
merged into the older one, so a client is always found by any of their ids.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.engine import Connection

from storage.event_row import EventRow
from storage.models import Client, ClientIdentity, FollowupMark, OutboxMessage, StoredEvent
from storage.phones import normalize_phone
from storage.upsert import insert_ignoring_conflicts

Identity = tuple[str, str]
_LOOKUP_CHUNK = 500


def identities_of(row: EventRow) -> list[Identity]:
    keys: list[Identity] = [("user", row["user_id"])]
    if crm_id := row["crm_id"]:
        keys.append(("crm", crm_id))
    if lead_id := row["lead_id"]:
        keys.append(("lead", lead_id))
    if (raw_phone := row["phone"]) and (phone := normalize_phone(raw_phone)):
        keys.append(("phone", phone))
    return keys


class _Groups:
    """Union-find over identities, so ids seen together in one batch end up as one client."""

    def __init__(self) -> None:
        self.parent: dict[Identity, Identity] = {}

    def find(self, key: Identity) -> Identity:
        parent = self.parent.setdefault(key, key)
        if parent != key:
            parent = self.parent[key] = self.find(parent)
        return parent

    def union(self, keys: Sequence[Identity]) -> None:
        root = self.find(keys[0])
        for key in keys[1:]:
            other = self.find(key)
            if other != root:
                self.parent[other] = root


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
    """Several processes on one PostgreSQL: whoever sees an identity first creates its client, the others
    wait here until that commits and then find it (READ COMMITTED reads it in the next statement), so
    one person never becomes two clients. Locks are taken in slot order, one space after the other, so
    two writers never deadlock, and end with the transaction."""
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


class ClientResolver:
    """Maps identities to client ids with a bounded cache in front of ``client_identities``."""

    def __init__(self, cache_size: int = 200_000) -> None:
        self._cache: OrderedDict[Identity, int] = OrderedDict()
        self._names: dict[int, str] = {}
        self._cache_size = cache_size

    def forget(self) -> None:
        """Drop the cache (after a rollback or a merge, it may name clients that no longer exist)."""
        self._cache.clear()
        self._names.clear()

    def _remember(self, key: Identity, client_id: int) -> None:
        self._cache[key] = client_id
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

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
        if missing and conn.dialect.name == "postgresql":
            lock_identities(conn, missing)
        values = sorted({value for _, value in missing})
        for start in range(0, len(values), _LOOKUP_CHUNK):
            for kind, value, client_id in _identities_with_values(
                conn, values[start : start + _LOOKUP_CHUNK]
            ):
                if (kind, value) in wanted:
                    found[(kind, value)] = client_id
                    self._remember((kind, value), client_id)
        return found

    def _resolve_from_cache(self, rows: list[EventRow]) -> list[EventRow]:
        """Rows whose ids are all known and name one client are settled here; the rest are returned."""
        unsettled = []
        cache = self._cache
        for row in rows:
            client_ids = {cache.get(key) for key in identities_of(row)}
            known = client_ids.pop() if len(client_ids) == 1 else None
            if known is not None:
                row["client_id"] = known
            else:
                unsettled.append(row)
        return unsettled

    def resolve(self, conn: Connection, rows: list[EventRow], now: datetime) -> None:
        """Set ``client_id`` on every row, creating, linking and merging clients as the rows reveal."""
        unsettled = self._resolve_from_cache(rows)
        if unsettled:
            merged = self._resolve_unsettled(conn, unsettled, now)
            if merged:
                # A row settled from the cache may name a client that was just merged away. Only those:
                # SQLite may hand a merged-away id to a client created in this same batch.
                pending = {id(row) for row in unsettled}
                for row in rows:
                    if id(row) not in pending:
                        row["client_id"] = _survivor(merged, row["client_id"])
        self._update_names(conn, rows)

    def _resolve_unsettled(self, conn: Connection, rows: list[EventRow], now: datetime) -> dict[int, int]:
        """Union-find over the rows' ids; returns the clients merged away, each mapped to its survivor."""
        groups = _Groups()
        row_keys = [identities_of(row) for row in rows]
        for keys in row_keys:
            groups.union(keys)
        known = self._lookup(conn, groups.parent.keys())

        members: dict[Identity, list[Identity]] = {}
        for key in groups.parent:
            members.setdefault(groups.find(key), []).append(key)

        client_of_group: dict[Identity, int] = {}
        merged: dict[int, int] = {}
        new_groups: list[Identity] = []
        for root, keys in members.items():
            existing = sorted({_survivor(merged, known[key]) for key in keys if key in known})
            if not existing:
                new_groups.append(root)
                continue
            client_of_group[root] = existing[0]
            if len(existing) > 1:
                self._merge(conn, existing[0], existing[1:])
                merged.update(dict.fromkeys(existing[1:], existing[0]))
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

        for row, keys in zip(rows, row_keys, strict=True):
            row["client_id"] = client_of_group[groups.find(keys[0])]
        return merged

    def _merge(self, conn: Connection, survivor: int, others: list[int]) -> None:
        # Everything that names a client moves to the survivor, or deleting the others would cascade to it.
        for model in (StoredEvent, ClientIdentity, FollowupMark, OutboxMessage):
            conn.execute(update(model).where(model.client_id.in_(others)).values(client_id=survivor))
        conn.execute(delete(Client).where(Client.id.in_(others)))
        self.forget()

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
