"""Full-text search over what clients wrote and what the assistant answered.

Ingestion is the hot path, so nothing is indexed on insert (no trigger on ``events``): ``SearchIndexer``
indexes new events in the background, in batches, from the last indexed event id. SQLite keeps an FTS5
table, PostgreSQL a tsvector per event built with its Russian stemmer.

Every query word matches as a prefix of a rough stem ("стрижку" → стрижк…), on both backends alike;
PostgreSQL also matches the word as its Russian stemmer normalises it. Limitations:
- SQLite has no Russian stemmer: alternating stems are not found (ноготь / ногти, день / дня), and some
  unrelated words sharing the prefix are. PostgreSQL's stemmer has quirks of its own ("запись" → 'зап',
  so "записи" does not find "запись" there, though "запись" finds both).
- PostgreSQL ignores stop words ("на", "в", English "it"): a query of stop words only finds nothing.
- Only letters and digits are searched for; every other character separates words ("50%" finds "50").
- Clients are picked among the 1,000 most recently stored matching events.
- An event is found once the indexer has run (every few seconds), not the moment it is stored.
- The SQLite index keeps a copy of the texts: whoever blanks or deletes event texts calls
  ``remove_events`` in the same transaction (PostgreSQL drops deleted events itself, by a foreign key).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    Text,
    column,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    table,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from storage.database import Database, StorageUnavailable
from storage.models import Client, StoredEvent

logger = logging.getLogger(__name__)

MAX_QUERY_WORDS = 10
MAX_WORD_CHARS = 64  # PostgreSQL refuses words over 2047 characters in a tsquery
SNIPPET_CHARS = 160
SNIPPET_CONTEXT_CHARS = 50  # of them, before the match
SETTLE_POLL_SECONDS = 0.05
# SQLite has one writer at a time: small batches with a pause between them keep ingestion waiting for
# the indexer at most about ten milliseconds (FTS5 takes about 60 µs per event of 200 characters).
BATCH_EVENTS = 200
BATCH_PAUSE_SECONDS = 0.01
# Clients are picked among this many newest matches: a common word then costs as little as a rare one.
RANKED_MATCHES = 1000

# Created by migration 0003, outside the ORM models: FTS5 tables cannot be described by them.
_state = table("search_state", column("id", Integer), column("last_event_id", BigInteger))
_fts = table(
    "search_fts",
    column("rowid", Integer),
    column("message", Text),
    column("assistant_response", Text),
    column("search_fts", Text),  # FTS5's hidden column named after the table: the target of MATCH
)
_documents = table(
    "search_documents", column("event_row_id", BigInteger), column("document", postgresql.TSVECTOR)
)
_RUSSIAN: ColumnElement[Any] = literal_column("'russian'::regconfig")


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A matching client with their latest matching event: when, and a plain-text snippet of it."""

    client_id: int
    name: str | None
    snippet: str
    ts: datetime


_WORD = re.compile(r"[^\W_]+")


def query_words(query: str) -> list[str]:
    """The runs of letters and digits in the owner's query, lower-cased.

    Every other character only separates words, so nothing an owner types reaches FTS or SQL syntax.
    """
    words = _WORD.findall(unicodedata.normalize("NFKC", query).lower())
    return list(dict.fromkeys(word[:MAX_WORD_CHARS] for word in words))[:MAX_QUERY_WORDS]


_MIN_STEM = 4
_VOWELS = frozenset("аеиоуыэюяйь")  # and й, ь: all that ends a word without being its stem
_CYRILLIC = re.compile(r"^[а-я]+$")
# Inflections with a consonant (trailing vowels are dropped separately), longest first.
_ENDINGS = sorted(
    {
        *("иями", "ями", "ами", "иях", "ях", "ах", "иям", "ям", "ам", "ием", "ом", "ем", "ией", "ой", "ей"),
        *("ою", "ею", "ов", "ев", "ого", "его", "ому", "ему", "ым", "им", "ых", "их", "ыми", "ими", "ый"),
        *("ий", "ть", "ла", "ло", "ли", "л", "ет", "ют", "ит", "ят", "ешь", "ишь", "ете", "ите"),
    },
    key=len,
    reverse=True,
)


def rough_stem(word: str) -> str:
    """A Russian word of more than four letters without its ending: what the search matches as a prefix.

    "стрижку" → "стрижк", "записаться" → "запис", "вечером" → "вечер"; a stem keeps four letters at least.
    """
    word = word.replace("ё", "е")
    if len(word) <= _MIN_STEM or not _CYRILLIC.match(word):
        return word
    if word.endswith(("ся", "сь")) and len(word) - 2 >= _MIN_STEM:
        word = word[:-2]
    ending = next((end for end in _ENDINGS if word.endswith(end) and len(word) - len(end) >= _MIN_STEM), "")
    word = word[: len(word) - len(ending)]
    while len(word) > _MIN_STEM and word[-1] in _VOWELS:
        word = word[:-1]
    return word


def _fts5_query(words: Sequence[str]) -> str:
    # Each word is an FTS5 string (quotes doubled), so NEAR, AND, -, ^, : and the like are plain words.
    terms = []
    for word in words:
        quoted = '"' + rough_stem(word).replace('"', '""') + '"'
        terms.append(quoted if word.isdigit() else quoted + "*")
    return " ".join(terms)


def _tsquery(words: Sequence[str]) -> ColumnElement[Any]:
    # Each form is a quoted tsquery lexeme (the query itself is a bound parameter). The Russian stemmer
    # normalises the word as typed, and the rough stem finds the forms it stems apart ("запись" is 'зап',
    # "записаться" 'записа'); it drops stop words.
    terms = []
    for word in words:
        if word.isdigit():
            terms.append(_lexeme(word))
        else:
            forms = dict.fromkeys((word, rough_stem(word)))
            terms.append("(" + " | ".join(_lexeme(form) + ":*" for form in forms) + ")")
    return func.to_tsquery(_RUSSIAN, " & ".join(terms))


def _lexeme(form: str) -> str:
    return "'" + form.replace("\\", "\\\\").replace("'", "''") + "'"


_HAS_TEXT = or_(StoredEvent.message.is_not(None), StoredEvent.assistant_response.is_not(None))


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """The highest visible event id, and which transactions were running when it was read."""

    visible_max: int
    xmin: int  # every transaction below this id had ended (PostgreSQL; 0 on SQLite)
    xmax: int  # every transaction from this id on had not started yet

    @property
    def quiet(self) -> bool:
        return self.xmin >= self.xmax


class _Index(Protocol):
    """What differs between the backends' indexes."""

    def snapshot(self, conn: Connection) -> _Snapshot: ...

    def add_range(self, conn: Connection, after: int, upto: int) -> None: ...

    def remove(self, conn: Connection, row_ids: list[int]) -> None: ...

    def matching(self, words: Sequence[str]) -> Select[tuple[int]]:
        """The ids of the newest ``RANKED_MATCHES`` matching events."""
        ...


class _Fts5Index:
    def snapshot(self, conn: Connection) -> _Snapshot:
        # One writer at a time, ids handed out in order: what is visible is final.
        visible = (conn.execute(select(func.coalesce(func.max(StoredEvent.id), 0)))).scalar_one()
        return _Snapshot(visible, 0, 0)

    def add_range(self, conn: Connection, after: int, upto: int) -> None:
        # Cleared first, so a range indexed again (ids reused after a deletion) replaces what was there.
        conn.execute(delete(_fts).where(_fts.c.rowid > after, _fts.c.rowid <= upto))
        texts = select(StoredEvent.id, StoredEvent.message, StoredEvent.assistant_response).where(
            StoredEvent.id > after, StoredEvent.id <= upto, _HAS_TEXT
        )
        conn.execute(insert(_fts).from_select(["rowid", "message", "assistant_response"], texts))

    def remove(self, conn: Connection, row_ids: list[int]) -> None:
        for chunk in _chunks(row_ids):
            conn.execute(delete(_fts).where(_fts.c.rowid.in_(chunk)))
        # SQLite hands the highest ids out again once they are deleted: move the indexer's progress back
        # to the highest id left, so that a new event reusing an id is indexed too.
        highest = select(func.coalesce(func.max(StoredEvent.id), 0)).scalar_subquery()
        conn.execute(update(_state).where(_state.c.last_event_id > highest).values(last_event_id=highest))

    def matching(self, words: Sequence[str]) -> Select[tuple[int]]:
        return (
            select(_fts.c.rowid.label("event_row_id"))
            .where(_fts.c.search_fts.match(_fts5_query(words)))
            .order_by(_fts.c.rowid.desc())
            .limit(RANKED_MATCHES)
        )


class _TsvectorIndex:
    def snapshot(self, conn: Connection) -> _Snapshot:
        # Ids are handed out before commit, so a lower id may still become visible: see SearchIndexer.
        result = conn.execute(
            select(
                func.coalesce(func.max(StoredEvent.id), 0),
                literal_column("pg_snapshot_xmin(pg_current_snapshot())::text::bigint", BigInteger),
                literal_column("pg_snapshot_xmax(pg_current_snapshot())::text::bigint", BigInteger),
            )
        )
        visible_max, xmin, xmax = result.one()
        return _Snapshot(visible_max, xmin, xmax)

    def add_range(self, conn: Connection, after: int, upto: int) -> None:
        document = func.to_tsvector(
            _RUSSIAN, func.concat_ws(" ", StoredEvent.message, StoredEvent.assistant_response)
        )
        documents = select(StoredEvent.id, document).where(
            StoredEvent.id > after, StoredEvent.id <= upto, _HAS_TEXT
        )
        statement = postgresql.insert(_documents).from_select(["event_row_id", "document"], documents)
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=["event_row_id"], set_={"document": statement.excluded.document}
            )
        )

    def remove(self, conn: Connection, row_ids: list[int]) -> None:
        # search_state is left alone: ids are never reused here, and locking it could deadlock with the
        # indexer, which holds it while it waits for the events this transaction deletes.
        for chunk in _chunks(row_ids):
            conn.execute(delete(_documents).where(_documents.c.event_row_id.in_(chunk)))

    def matching(self, words: Sequence[str]) -> Select[tuple[int]]:
        return (
            select(_documents.c.event_row_id)
            .where(_documents.c.document.bool_op("@@")(_tsquery(words)))
            .order_by(_documents.c.event_row_id.desc())
            .limit(RANKED_MATCHES)
        )


def _chunks(row_ids: list[int], size: int = 500) -> Iterator[list[int]]:
    for start in range(0, len(row_ids), size):
        yield row_ids[start : start + size]


def _index_for(dialect_name: str) -> _Index:
    return _Fts5Index() if dialect_name == "sqlite" else _TsvectorIndex()


def _latest_per_client(matching: Select[tuple[int]], limit: int) -> Select[Any]:
    matched = matching.subquery()
    ranked = (
        select(
            StoredEvent.id,
            StoredEvent.client_id,
            func.row_number()
            .over(partition_by=StoredEvent.client_id, order_by=(StoredEvent.ts.desc(), StoredEvent.id.desc()))
            .label("rank"),
        )
        .join(matched, matched.c.event_row_id == StoredEvent.id)
        .subquery()
    )
    # Texts are read for the chosen events only, not carried through the ranking of every match.
    return (
        select(
            ranked.c.client_id,
            Client.name,
            StoredEvent.ts,
            StoredEvent.message,
            StoredEvent.assistant_response,
        )
        .join(Client, Client.id == ranked.c.client_id)
        .join(StoredEvent, StoredEvent.id == ranked.c.id)
        .where(ranked.c.rank == 1)
        .order_by(StoredEvent.ts.desc(), StoredEvent.id.desc())
        .limit(limit)
    )


_SPACE = re.compile(r"\s")


def _word_starts(words: Sequence[str]) -> re.Pattern[str]:
    """Where a query word (as its stem) begins a word of a text, whatever the case or ё."""
    stems = (re.escape(rough_stem(word)).replace("е", "[её]") for word in words)
    return re.compile("|".join(rf"(?<![^\W_]){stem}" for stem in stems), re.IGNORECASE)


def _snippet(texts: Sequence[str | None], found: re.Pattern[str]) -> str:
    """A piece of the first text with a query word in it, around that word, cut between words.

    Cut here rather than by snippet() or ts_headline(): ts_headline drops whatever looks like an HTML tag,
    and the owner must see a text as it was written.
    """
    present = [text for text in texts if text]
    if not present:
        return ""
    text = next((text for text in present if found.search(text)), present[0])
    match = found.search(text)
    start = match.start() if match else 0
    begin = max(start - SNIPPET_CONTEXT_CHARS, 0)
    end = min(begin + SNIPPET_CHARS, len(text))
    if begin > 0 and (space := _SPACE.search(text, begin, start)):
        begin = space.end()
    if end < len(text) and (spaces := [space.start() for space in _SPACE.finditer(text, start, end)]):
        end = spaces[-1]
    return ("…" if begin > 0 else "") + " ".join(text[begin:end].split()) + ("…" if end < len(text) else "")


async def search_clients(session: AsyncSession, query: str, limit: int = 10) -> list[SearchHit]:
    """Clients with a message or assistant answer that matches every word of the query, latest first."""
    words = query_words(query)
    if not words:
        return []
    index = _index_for((await session.connection()).dialect.name)
    rows = await session.execute(_latest_per_client(index.matching(words), limit))
    found = _word_starts(words)
    return [
        SearchHit(client_id, name, _snippet((message, answer), found), ts)
        for client_id, name, ts, message, answer in rows
    ]


async def remove_events(conn: AsyncConnection, row_ids: Iterable[int]) -> None:
    """Take events out of the index; call it in the transaction that anonymises or deletes them."""
    index, ids = _index_for(conn.dialect.name), sorted(set(row_ids))
    await conn.run_sync(lambda sync_conn: index.remove(sync_conn, ids))


def _index_batch(conn: Connection, horizon: int, batch_size: int) -> tuple[int, bool]:
    """Index the next batch up to ``horizon``; returns how many events it passed and whether it got there."""
    last = conn.execute(select(_state.c.last_event_id).where(_state.c.id == 1).with_for_update()).scalar_one()
    if last >= horizon:
        return 0, True
    window = (
        select(StoredEvent.id)
        .where(StoredEvent.id > last, StoredEvent.id <= horizon)
        .order_by(StoredEvent.id)
        .limit(batch_size)
        .subquery()
    )
    upto, scanned = conn.execute(select(func.max(window.c.id), func.count()).select_from(window)).one()
    if scanned < batch_size:
        upto = horizon
    if scanned:
        _index_for(conn.dialect.name).add_range(conn, last, upto)
    conn.execute(update(_state).where(_state.c.id == 1).values(last_event_id=upto))
    return scanned, upto >= horizon


class SearchIndexer:
    """Indexes new events every few seconds in a background task, so ingestion never waits for search.

    PostgreSQL hands out ids before commit, so an event with a lower id can become visible after one with
    a higher id. The indexer therefore only passes the ids it saw once every transaction that was running
    then has ended (``pg_current_snapshot``): no event is skipped, at the cost of one interval of delay
    while events keep arriving.
    """

    def __init__(
        self,
        db: Database,
        *,
        interval_seconds: float = 3.0,
        batch_size: int = BATCH_EVENTS,
        settle_timeout_seconds: float = 10.0,
    ) -> None:
        self._db = db
        self._settle_timeout = settle_timeout_seconds
        self._interval = interval_seconds
        self._batch_size = batch_size
        self._candidate: _Snapshot | None = None
        self._indexed_to = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._stop.clear()
            self._task = asyncio.create_task(self._run(), name="search-indexer")

    async def close(self) -> None:
        """Stop after the batch in progress; the rest is indexed on the next start."""
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def catch_up(self) -> int:
        """Index every event committed before the call; returns how many events were passed over.

        On PostgreSQL this waits (at most ``settle_timeout_seconds``) for transactions still writing events.
        """
        indexed, target = await self._pass()
        deadline = asyncio.get_running_loop().time() + self._settle_timeout
        while self._indexed_to < target and not self._stop.is_set():
            if asyncio.get_running_loop().time() > deadline:
                logger.warning("search index left behind: a transaction writing events is still open")
                break
            await asyncio.sleep(SETTLE_POLL_SECONDS)
            indexed += (await self._pass())[0]
        return indexed

    def _settled_horizon(self, now: _Snapshot) -> int | None:
        """The highest id below which every event is visible or never will be, if it moved."""
        if now.quiet:
            self._candidate = None
            return now.visible_max
        settled = None
        if self._candidate is not None and now.xmin >= self._candidate.xmax:
            settled, self._candidate = self._candidate.visible_max, None
        if self._candidate is None:
            self._candidate = now
        return settled

    async def _pass(self) -> tuple[int, int]:
        """Index what is settled; returns how many events were passed over and the highest id seen."""
        index = _index_for(self._db.engine.dialect.name)
        async with self._db.engine.connect() as conn:
            now = await conn.run_sync(index.snapshot)
        horizon = self._settled_horizon(now)
        if horizon is None:
            return 0, now.visible_max
        indexed, reached = 0, False
        while not reached and not self._stop.is_set():
            # Through the writer's transactions: on SQLite they take turns in one thread (or the writer
            # process), so an index batch never makes a commit of new events wait on the file lock.
            scanned, reached = await self._db.writes.run(
                functools.partial(_index_batch, horizon=horizon, batch_size=self._batch_size)
            )
            indexed += scanned
            if not reached:
                await asyncio.sleep(BATCH_PAUSE_SECONDS)
        if reached:
            self._indexed_to = max(self._indexed_to, horizon)
        return indexed, now.visible_max

    async def _run(self) -> None:
        failing = False
        while not self._stop.is_set():
            try:
                await self._pass()
            except (SQLAlchemyError, OSError, StorageUnavailable) as exc:
                if not failing:
                    logger.warning(
                        "search indexing failed (%s); retrying in the background", type(exc).__name__
                    )
                failing = True
            else:
                if failing:
                    logger.info("search indexing works again")
                failing = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._interval)
