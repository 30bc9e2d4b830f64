"""Retention under 152-FZ: old events lose what identifies a person, and one person is erased on request.

``anonymize_before`` keeps every report number while removing the person:

- Blanked on every event older than the cutoff: message, assistant_response, prompt, phone, name, lat,
  lon, and ``extra`` except marketing attribution (``utm``, ``utm_*``, ``source``, ``campaign``,
  ``medium``; scalar values only). ``event_id`` becomes a pseudonym too: a source may build it from a
  user id, and the content hash of a known event would confirm who sent it. The price: an event older
  than the cutoff that a source sends again is stored again.
- Kept: event, ts, channel, actor, intent, action, reason, status, amount, currency, confidence,
  response_time_ms, appointment_at, location, scenario, service, manager_id (staff, not the client).
- Pseudonymised once a client has been silent for the whole retention period: user_id, crm_id and
  lead_id on all their events and identities (``anon_`` + 20 hex of HMAC-SHA256), their phone
  identities deleted, their name cleared. A lead id is a CRM record of the person, so it goes with the
  CRM id. The reports match a user's events by (client, user_id) across any span of time (latency to
  the latest message, first message to booking, repeat bookings), so an id is replaced on all of a
  client's events at once or not at all: a client still writing keeps their ids on old events, which
  hides nothing, as the same client row links them to the new ones anyway. The pseudonym is keyed by
  the client row too, so a person who returns after being pseudonymised becomes a new client with new
  pseudonyms, exactly as distinct from the old ones as before: the numbers of any period stay the same.
- Quarantined payloads older than the cutoff are deleted: they hold raw events.

Work goes in batches, each its own transaction, so ingestion continues in between. Everything is
idempotent: what was already blanked or starts with ``anon_`` is not touched again.

On SQLite the connection that erases zeroes what it frees (``secure_delete``), the full-text index is
merged (FTS5 keeps the words of deleted rows in its segments otherwise), and the file is rebuilt
(``VACUUM``: rows freed earlier by other connections may still hold old bytes) and the WAL truncated:
afterwards the erased texts are in no byte of the database files. VACUUM pauses ingestion while it runs
(sources get 503 and retry) and needs free disk space the size of the database. PostgreSQL keeps dead
row versions until autovacuum reuses their space; that cannot be forced from here.

The links between user ids and the values they share (``identity_links``) go the same way: renamed
with the ids, phones deleted, erased with the client. Every writer keeps an identity cache
(``ClientResolver``); both changes move ``identity_epoch`` on in their transaction, so writers (in
``leadtrail run`` too, when the CLI did it) start afresh with their next batch.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Select,
    Table,
    Text,
    bindparam,
    cast,
    delete,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from storage.database import Database
from storage.identity_groups import BUMP_EPOCH, chunks
from storage.identity_policy import USER
from storage.models import (
    Base,
    Client,
    ClientIdentity,
    IdentityLink,
    OwnerAudit,
    QuarantinedPayload,
    StoredEvent,
)
from storage.phones import DEFAULT_REGION, normalize_phone
from storage.search import remove_events
from storage.timeline import find_client_ids

logger = logging.getLogger(__name__)

PSEUDONYM_PREFIX = "anon_"
PSEUDONYM_HEX_CHARS = 20
DEFAULT_BATCH_SIZE = 1000
BLANKED_COLUMNS = ("message", "assistant_response", "prompt", "phone", "name", "lat", "lon")
PSEUDONYMISED_COLUMNS = ("user_id", "crm_id", "lead_id")
EXTRA_KEPT_KEYS = frozenset({"utm", "source", "campaign", "medium"})
EXTRA_KEPT_PREFIX = "utm_"
# Shorter values would match inside unrelated text; they are scrubbed only where they are the whole text.
_MIN_MENTION_CHARS = 4
_NATIONAL_PHONE_DIGITS = 10
_SCAN_CHUNK = 500


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


events = _table(StoredEvent)
clients = _table(Client)
identities = _table(ClientIdentity)
links = _table(IdentityLink)
quarantine = _table(QuarantinedPayload)
audit = _table(OwnerAudit)


@dataclass(frozen=True, slots=True)
class AnonymizationReport:
    """What a run changed, or would change with ``dry_run``."""

    cutoff: datetime
    dry_run: bool
    events: int  # old events whose personal fields were blanked
    clients: int  # silent clients whose ids became pseudonyms
    quarantined: int  # old rejected payloads deleted

    @property
    def changed(self) -> bool:
        return bool(self.events or self.clients or self.quarantined)


@dataclass(frozen=True, slots=True)
class ForgetReport:
    """How much was erased; counts only, so it can go to the audit log."""

    clients: int
    events: int
    identities: int
    quarantined: int


class Pseudonyms:
    """Keyed hashes: without the secret nobody can test a guessed id (a phone has few digits)."""

    def __init__(self, secret: bytes) -> None:
        if not secret:
            raise ValueError("retention.hash_secret is empty")
        self._secret = secret

    def of(self, scope: str, value: str) -> str:
        digest = hmac.new(self._secret, f"{scope}\x1f{value}".encode(), hashlib.sha256).hexdigest()
        return PSEUDONYM_PREFIX + digest[:PSEUDONYM_HEX_CHARS]

    def of_client_id(self, client_id: int, value: str) -> str:
        return self.of(f"client:{client_id}", value)


def is_pseudonym(value: str | None) -> bool:
    return value is None or value.startswith(PSEUDONYM_PREFIX)


def _not_pseudonym(column: ColumnElement[str]) -> ColumnElement[bool]:
    # NULL compares to NULL, i.e. false: an absent id needs no pseudonym.
    return ~column.startswith(PSEUDONYM_PREFIX, autoescape=True)


def kept_extra(extra: dict[str, Any] | None) -> dict[str, Any] | None:
    """The attribution keys of ``extra`` that say nothing about the person; None when none are left."""
    if not extra:
        return None
    kept = {
        key: value
        for key, value in extra.items()
        if (key in EXTRA_KEPT_KEYS or key.startswith(EXTRA_KEPT_PREFIX))
        and isinstance(value, str | int | float | bool)
    }
    return kept or None


# PostgreSQL may hold JSON 'null' where SQLite holds NULL; both mean "no extras".
_HAS_EXTRA = func.coalesce(cast(events.c.extra, Text), "null") != "null"
_HAS_BLANKABLE = or_(*(events.c[name].is_not(None) for name in BLANKED_COLUMNS))
_OLD_EVENT_TO_CLEAN = or_(_HAS_BLANKABLE, _HAS_EXTRA, _not_pseudonym(events.c.event_id))
_CLEAN_EVENT = (
    update(events)
    .where(events.c.id == bindparam("row_id"))
    .values(
        dict.fromkeys(BLANKED_COLUMNS, None)
        | {
            "extra": bindparam("new_extra", type_=JSON(none_as_null=True)),
            "event_id": bindparam("new_event_id"),
        }
    )
)


@asynccontextmanager
async def _erasing_connection(db: Database, *, autocommit: bool = False) -> AsyncIterator[AsyncConnection]:
    """A connection whose deletes and updates zero the freed bytes on SQLite; restored for the pool."""
    async with db.engine.connect() as conn:
        if autocommit:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
        if not db.is_sqlite:
            yield conn
            return
        await conn.exec_driver_sql("PRAGMA secure_delete=ON")
        await conn.commit()
        try:
            yield conn
        finally:
            await conn.rollback()
            await conn.exec_driver_sql("PRAGMA secure_delete=OFF")
            await conn.commit()


@asynccontextmanager
async def _transaction(conn: AsyncConnection, *, write: bool) -> AsyncIterator[None]:
    """One batch. A writing batch on SQLite takes the write lock first, so what it reads stays true."""
    async with conn.begin():
        if write and conn.dialect.name == "sqlite":
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield


async def _clean_old_events(
    conn: AsyncConnection, cutoff: datetime, pseudonyms: Pseudonyms, batch_size: int, dry_run: bool
) -> int:
    """Blank the personal fields of events before the cutoff, batch by batch of row ids."""
    changed = 0
    last_id = 0
    while True:
        async with _transaction(conn, write=not dry_run):
            rows = (
                await conn.execute(
                    select(events.c.id, events.c.event_id, events.c.extra, _HAS_BLANKABLE.label("personal"))
                    .where(events.c.id > last_id, events.c.ts < cutoff, _OLD_EVENT_TO_CLEAN)
                    .order_by(events.c.id)
                    .limit(batch_size)
                )
            ).all()
            if not rows:
                return changed
            last_id = rows[-1].id
            updates = []
            for row in rows:
                extra = kept_extra(row.extra)
                event_id = (
                    row.event_id
                    if is_pseudonym(row.event_id)
                    else pseudonyms.of(f"event:{row.id}", row.event_id)
                )
                if row.personal or extra != row.extra or event_id != row.event_id:
                    updates.append({"row_id": row.id, "new_extra": extra, "new_event_id": event_id})
            changed += len(updates)
            if updates and not dry_run:
                await conn.execute(_CLEAN_EVENT, updates)
                await remove_events(conn, (item["row_id"] for item in updates))


def _silent_clients_to_pseudonymise(cutoff: datetime, after_id: int, limit: int) -> Select[int]:
    client_id = clients.c.id
    recent_event = exists().where(events.c.client_id == client_id, events.c.ts >= cutoff)
    identity_left = exists().where(
        identities.c.client_id == client_id,
        or_(identities.c.kind == "phone", _not_pseudonym(identities.c.value)),
    )
    id_left = exists().where(
        events.c.client_id == client_id,
        or_(*(_not_pseudonym(events.c[name]) for name in PSEUDONYMISED_COLUMNS)),
    )
    return (
        select(client_id)
        .where(
            client_id > after_id,
            ~recent_event,
            or_(clients.c.name.is_not(None), clients.c.search_name.is_not(None), identity_left, id_left),
        )
        .order_by(client_id)
        .limit(limit)
    )


async def _still_silent(conn: AsyncConnection, client_ids: list[int], cutoff: datetime) -> list[int]:
    """Lock the clients (PostgreSQL; SQLite holds its write lock), then drop any that wrote meanwhile.

    Rows the writer is using right now are skipped rather than waited for: they are not silent anyway,
    or they are pseudonymised on the next run.
    """
    locked = (
        await conn.execute(
            select(clients.c.id).where(clients.c.id.in_(client_ids)).with_for_update(skip_locked=True)
        )
    ).scalars()
    candidates = sorted(locked)
    active = set(
        (
            await conn.execute(
                select(events.c.client_id)
                .where(events.c.client_id.in_(candidates), events.c.ts >= cutoff)
                .distinct()
            )
        ).scalars()
    )
    return [client_id for client_id in candidates if client_id not in active]


async def _users_of(conn: AsyncConnection, client_ids: list[int]) -> dict[str, int]:
    """Each user id of these clients, with its client."""
    found = await conn.execute(
        select(identities.c.value, identities.c.client_id).where(
            identities.c.client_id.in_(client_ids), identities.c.kind == USER
        )
    )
    return {user: client_id for user, client_id in found}


async def _pseudonymise_links(conn: AsyncConnection, client_ids: list[int], pseudonyms: Pseudonyms) -> None:
    """The links of these clients' user ids: phones deleted, user ids and values as on their events."""
    owners = await _users_of(conn, client_ids)
    renames = []
    for part in chunks(sorted(owners)):
        await conn.execute(delete(links).where(links.c.user_id.in_(part), links.c.kind == "phone"))
        found = await conn.execute(
            select(links.c.id, links.c.user_id, links.c.value).where(links.c.user_id.in_(part))
        )
        for row_id, user, value in found:
            if is_pseudonym(user) and is_pseudonym(value):
                continue
            client_id = owners[user]
            renames.append(
                {
                    "link": row_id,
                    "new_user": user if is_pseudonym(user) else pseudonyms.of_client_id(client_id, user),
                    "new_value": value if is_pseudonym(value) else pseudonyms.of_client_id(client_id, value),
                }
            )
    if renames:
        await conn.execute(
            update(links)
            .where(links.c.id == bindparam("link"))
            .values(user_id=bindparam("new_user"), value=bindparam("new_value")),
            renames,
        )


async def _pseudonymise_clients(conn: AsyncConnection, client_ids: list[int], pseudonyms: Pseudonyms) -> None:
    """Replace every id of these clients, on their events, links and identities, in one transaction."""
    await _pseudonymise_links(conn, client_ids, pseudonyms)
    for name in PSEUDONYMISED_COLUMNS:
        column = events.c[name]
        pairs = await conn.execute(
            select(events.c.client_id, column)
            .where(events.c.client_id.in_(client_ids), _not_pseudonym(column))
            .distinct()
        )
        renames = [
            {"for_client": client_id, "old": value, "new": pseudonyms.of_client_id(client_id, value)}
            for client_id, value in pairs
        ]
        if renames:
            await conn.execute(
                update(events)
                .where(events.c.client_id == bindparam("for_client"), column == bindparam("old"))
                .values({name: bindparam("new")}),
                renames,
            )
    await conn.execute(
        delete(identities).where(identities.c.client_id.in_(client_ids), identities.c.kind == "phone")
    )
    known = await conn.execute(
        select(identities.c.id, identities.c.client_id, identities.c.value).where(
            identities.c.client_id.in_(client_ids), _not_pseudonym(identities.c.value)
        )
    )
    renames = [
        {"identity": row_id, "new": pseudonyms.of_client_id(client_id, value)}
        for row_id, client_id, value in known
    ]
    if renames:
        await conn.execute(
            update(identities).where(identities.c.id == bindparam("identity")).values(value=bindparam("new")),
            renames,
        )
    await conn.execute(
        update(clients).where(clients.c.id.in_(client_ids)).values(name=None, search_name=None)
    )
    await conn.execute(BUMP_EPOCH)


async def _pseudonymise_silent_clients(
    conn: AsyncConnection, cutoff: datetime, pseudonyms: Pseudonyms, batch_size: int, dry_run: bool
) -> int:
    done = 0
    last_id = 0
    while True:
        async with _transaction(conn, write=not dry_run):
            found = list(
                (await conn.execute(_silent_clients_to_pseudonymise(cutoff, last_id, batch_size))).scalars()
            )
            if not found:
                return done
            last_id = found[-1]
            if dry_run:
                done += len(found)
                continue
            silent = await _still_silent(conn, found, cutoff)
            if silent:
                await _pseudonymise_clients(conn, silent, pseudonyms)
            done += len(silent)


async def _drop_old_quarantine(conn: AsyncConnection, cutoff: datetime, dry_run: bool) -> int:
    # Bounded by ingest.quarantine_max_rows, so one statement is small enough.
    async with _transaction(conn, write=not dry_run):
        if dry_run:
            statement = select(func.count()).where(quarantine.c.received_at < cutoff)
            return int((await conn.execute(statement)).scalar_one())
        return (await conn.execute(delete(quarantine).where(quarantine.c.received_at < cutoff))).rowcount


async def _compact_sqlite(db: Database, *, search_index: bool) -> None:
    """Leave no erased byte in the SQLite files: merge the FTS5 index, rebuild the file, empty the WAL."""
    async with _erasing_connection(db, autocommit=True) as conn:
        try:
            if search_index:
                await conn.exec_driver_sql("INSERT INTO search_fts(search_fts) VALUES ('optimize')")
            await conn.exec_driver_sql("VACUUM")
            busy = (await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")).one()[0]
        except OperationalError as exc:
            logger.warning("erased rows are gone, but the SQLite file was not compacted: %s", exc.orig)
            return
    if busy:
        logger.warning("erased rows are gone, but the WAL file was not emptied (a reader was busy)")


async def anonymize_before(
    db: Database,
    cutoff: datetime,
    secret: bytes,
    *,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> AnonymizationReport:
    """Remove the person from events before ``cutoff`` while keeping every report number (see above)."""
    if cutoff.tzinfo is None:
        raise ValueError("cutoff must be an aware datetime")
    pseudonyms = Pseudonyms(secret)
    async with _erasing_connection(db) as conn:
        cleaned = await _clean_old_events(conn, cutoff, pseudonyms, batch_size, dry_run)
        pseudonymised = await _pseudonymise_silent_clients(conn, cutoff, pseudonyms, batch_size, dry_run)
        dropped = await _drop_old_quarantine(conn, cutoff, dry_run)
    report = AnonymizationReport(cutoff.astimezone(UTC), dry_run, cleaned, pseudonymised, dropped)
    if dry_run or not report.changed:
        return report
    if db.is_sqlite:
        await _compact_sqlite(db, search_index=bool(cleaned))
    return report


@dataclass(frozen=True, slots=True)
class _Traces:
    """What may name the person outside their own rows: ids, phones, names."""

    ids: frozenset[str]
    phones: frozenset[str]  # the last ten digits, however the phone was written
    names: frozenset[str]  # case-folded

    def found_in(self, content: str) -> bool:
        stripped = content.strip()
        if any(
            value == stripped or (len(value) >= _MIN_MENTION_CHARS and value in content) for value in self.ids
        ):
            return True
        digits = "".join(char for char in content if char.isdigit())
        if any(phone in digits for phone in self.phones):
            return True
        folded = stripped.casefold()
        return any(name in folded for name in self.names)

    def named_by(self, search: str) -> bool:
        """An owner's lookup that found the person: any of their ids, or a part of their name."""
        folded = " ".join(search.split()).casefold()
        partial_name = len(folded) >= _MIN_MENTION_CHARS - 1 and any(folded in name for name in self.names)
        return partial_name or self.found_in(search)


def _national_digits(phone: str, region: str) -> str | None:
    normalized = normalize_phone(phone, region)
    return normalized[-_NATIONAL_PHONE_DIGITS:] if normalized else None


async def _traces_of(conn: AsyncConnection, client_ids: list[int], query: str, region: str) -> _Traces:
    ids = {query.strip()}
    phones = {digits for digits in [_national_digits(query, region)] if digits and len(query.strip()) >= 5}
    names: set[str] = set()
    for kind, value in await conn.execute(
        select(identities.c.kind, identities.c.value).where(identities.c.client_id.in_(client_ids))
    ):
        ids.add(value)
        if kind == "phone" and (digits := _national_digits(value, region)):
            phones.add(digits)
    columns = [events.c[name] for name in (*PSEUDONYMISED_COLUMNS, "phone", "name")]
    for user_id, crm_id, lead_id, phone, name in await conn.execute(
        select(*columns).where(events.c.client_id.in_(client_ids)).distinct()
    ):
        ids.update(value for value in (user_id, crm_id, lead_id) if value)
        if phone and (digits := _national_digits(phone, region)):
            phones.add(digits)
        if name:
            names.add(name.casefold())
    names.update(
        name.casefold()
        for name in (await conn.execute(select(clients.c.name).where(clients.c.id.in_(client_ids)))).scalars()
        if name
    )
    return _Traces(frozenset(ids), frozenset(phones), frozenset(name for name in names if name.strip()))


async def _rows_mentioning(
    conn: AsyncConnection, id_column: Any, text_column: Any, check: Callable[[str], bool]
) -> list[int]:
    """Ids of the rows whose text ``check`` accepts; read in chunks, as payloads can be large."""
    found: list[int] = []
    last_id = 0
    while True:
        chunk = (
            await conn.execute(
                select(id_column, text_column)
                .where(id_column > last_id, text_column.is_not(None))
                .order_by(id_column)
                .limit(_SCAN_CHUNK)
            )
        ).all()
        if not chunk:
            return found
        last_id = chunk[-1][0]
        found.extend(row_id for row_id, content in chunk if check(content))


async def _delete_chunked(conn: AsyncConnection, table: Any, row_ids: Sequence[int]) -> int:
    for start in range(0, len(row_ids), _SCAN_CHUNK):
        await conn.execute(delete(table).where(table.c.id.in_(row_ids[start : start + _SCAN_CHUNK])))
    return len(row_ids)


async def _erase_clients(
    conn: AsyncConnection, client_ids: list[int], traces: _Traces, redacted_as: str
) -> ForgetReport:
    event_ids = list(
        (await conn.execute(select(events.c.id).where(events.c.client_id.in_(client_ids)))).scalars()
    )
    await remove_events(conn, event_ids)
    erased_events = await _delete_chunked(conn, events, event_ids)
    for part in chunks(sorted(await _users_of(conn, client_ids))):
        await conn.execute(delete(links).where(links.c.user_id.in_(part)))
    erased_identities = (
        await conn.execute(delete(identities).where(identities.c.client_id.in_(client_ids)))
    ).rowcount
    await conn.execute(delete(clients).where(clients.c.id.in_(client_ids)))
    await conn.execute(BUMP_EPOCH)
    payloads = await _rows_mentioning(conn, quarantine.c.id, quarantine.c.payload, traces.found_in)
    quarantined = await _delete_chunked(conn, quarantine, payloads)
    # The log keeps that an owner looked someone up; what they typed named this person, so it goes.
    lookups = await _rows_mentioning(conn, audit.c.id, audit.c.details, traces.named_by)
    for start in range(0, len(lookups), _SCAN_CHUNK):
        await conn.execute(
            update(audit)
            .where(audit.c.id.in_(lookups[start : start + _SCAN_CHUNK]))
            .values(details=redacted_as)
        )
    return ForgetReport(len(client_ids), erased_events, erased_identities, quarantined)


async def forget_client(
    db: Database,
    query: str,
    *,
    redacted_as: str,
    region: str = DEFAULT_REGION,
) -> ForgetReport:
    """Erase everyone known by this id (user, CRM, lead id or phone) now.

    Also deleted: quarantined payloads mentioning one of their ids, phones or names; owners' earlier
    lookups of them keep their time, and what was typed becomes ``redacted_as``. Recording that the
    erasure was done is the caller's (it knows who asked and how to say it). ``region``: of a phone
    without a country code (``identity.default_region``).
    """
    async with _erasing_connection(db) as conn, _transaction(conn, write=True):
        async with AsyncSession(bind=conn) as session:
            client_ids = await find_client_ids(session, query, region)
        traces = await _traces_of(conn, client_ids, query, region)
        report = await _erase_clients(conn, client_ids, traces, redacted_as)
    if db.is_sqlite:
        await _compact_sqlite(db, search_index=report.events > 0)
    return report
