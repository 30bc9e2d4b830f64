"""Who is one client, with the data real sources send: phones however written, placeholders, values an
integration sends for everyone, a link undone by hand; on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest
from alembic import command
from sqlalchemy import func, insert, select

from storage.batch_store import StoreSettings
from storage.database import Database, _alembic_config, create_engine, migrate, open_database
from storage.identity_groups import unlink
from storage.identity_policy import PLACEHOLDERS, IdentityPolicy
from storage.models import Client, ClientIdentity, IdentityLink, StoredEvent
from storage.shared_identities import shared_values
from storage.timeline import JoinedBy, find_client_ids, load_card
from storage.writer import EventWriter
from tests.test_storage import event, rows


async def client_of(db: Database, query: str) -> int:
    async with db.sessions() as session:
        [client_id] = await find_client_ids(session, query)
    return client_id


async def clients(db: Database) -> int:
    async with db.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(Client))).scalar_one())


async def events_by_client(db: Database) -> dict[str, set[int]]:
    """user_id → the clients its events are on (always one)."""
    found: dict[str, set[int]] = {}
    async with db.sessions() as session:
        for user, client_id in await session.execute(select(StoredEvent.user_id, StoredEvent.client_id)):
            found.setdefault(user, set()).add(client_id)
    return found


async def test_a_phone_written_three_ways_is_one_client_and_the_card_says_why(
    db: Database, writer: EventWriter
) -> None:
    await writer.write(
        rows(
            event("tg_1", 1, phone="+7 (917) 555-12-34", name="Алсу"),
            event("wa_2", 2, phone="89175551234", channel="whatsapp"),
        )
    )
    await writer.write(rows(event("ig_3", 3, phone="9175551234", channel="instagram")))
    client_id = await client_of(db, "tg_1")
    assert await client_of(db, "wa_2") == await client_of(db, "ig_3") == client_id
    assert await client_of(db, "8 (917) 555-12-34") == client_id
    async with db.sessions() as session:
        card = await load_card(session, client_id)
    assert card is not None
    assert card.identities["phone"] == ["+79175551234"]
    assert card.joined_by == [JoinedBy("phone", "+79175551234", ["tg_1", "wa_2", "ig_3"])]


FILLERS = sorted(PLACEHOLDERS | {p.upper() for p in PLACEHOLDERS} | {"", "   ", "0000", "xxx", "-----"})


@pytest.mark.parametrize("field", ["crm_id", "lead_id", "phone"])
async def test_placeholders_never_link_but_stay_on_the_event(
    db: Database, writer: EventWriter, field: str
) -> None:
    values = [*FILLERS, "12345", "+7 000 000-00-00"] if field == "phone" else FILLERS
    for number, value in enumerate(values):
        await writer.write(
            rows(event(f"tg_{number}", 1, **{field: value}), event(f"wa_{number}", 2, **{field: value}))
        )
    assert await clients(db) == 2 * len(values)
    async with db.sessions() as session:
        kept = set((await session.execute(select(getattr(StoredEvent, field)))).scalars())
        identities = set((await session.execute(select(ClientIdentity.kind))).scalars())
        links = int((await session.execute(select(func.count()).select_from(IdentityLink))).scalar_one())
    assert kept == set(values)
    assert identities == {"user"}
    assert links == 0


async def test_configured_values_never_link(db: Database) -> None:
    policy = IdentityPolicy.of("RU", ["BX_TEST", "+7 843 200-00-00"], 5)
    writer = EventWriter(db, settings=StoreSettings(identities=policy))
    await writer.start()
    try:
        await writer.write(
            rows(
                event("tg_1", 1, crm_id="bx_test", phone="8 (843) 200-00-00"),
                event("tg_2", 2, crm_id="BX_TEST", phone="+78432000000"),
            )
        )
    finally:
        await writer.close()
    assert await clients(db) == 2


async def test_a_value_shared_by_too_many_users_stops_linking_and_its_clients_split_back(
    db: Database, writer: EventWriter
) -> None:
    shared = {"crm_id": "BX_67890"}
    # Five user ids share the CRM id (within the limit); two of them also share a real phone.
    await writer.write(
        rows(
            event("tg_1", 1, phone="+7 917 111-11-11", name="Айдар", **shared),
            event("wa_2", 2, phone="89171111111", **shared),
            *(event(f"tg_{n}", n, **shared) for n in (3, 4, 5)),
        )
    )
    first = await client_of(db, "tg_1")
    assert await clients(db) == 1
    # A sixth: the CRM id is an integration's test value after all.
    await writer.write(rows(event("tg_6", 6, **shared)))
    assert await clients(db) == 5
    assert await client_of(db, "tg_1") == await client_of(db, "wa_2") == first  # their phone still joins
    others = {await client_of(db, user) for user in ("tg_3", "tg_4", "tg_5", "tg_6")}
    assert len(others) == 4 and first not in others
    assert {user: len(found) for user, found in (await events_by_client(db)).items()} == dict.fromkeys(
        ("tg_1", "wa_2", "tg_3", "tg_4", "tg_5", "tg_6"), 1
    )
    assert (await events_by_client(db))["tg_3"] == {await client_of(db, "tg_3")}
    # And no later event links through it, new user ids or known ones.
    await writer.write(rows(event("tg_7", 7, **shared), event("tg_3", 8, **shared)))
    assert await clients(db) == 6
    async with db.sessions() as session:
        assert await find_client_ids(session, "BX_67890") == []
        [value] = await shared_values(session)
        card = await load_card(session, first)
    assert (value.kind, value.value, value.users) == ("crm", "BX_67890", 7)
    assert card is not None and card.name == "Айдар"
    assert card.identities["user"] == ["tg_1", "wa_2"]


async def test_one_batch_where_thousands_share_every_id_is_stored(db: Database, writer: EventWriter) -> None:
    """The seed's ids sent for everyone, in one transaction: the union of 6,000 ids once recursed past
    Python's stack, failing the whole batch for ever."""
    same = {"crm_id": "BX_67890", "lead_id": "lead_2025_001", "phone": "+7 900 000-00-00"}
    batch = rows(*(event(f"tg_{n}", n % 60, event_id=f"s-{n}", **same) for n in range(6000)))
    result = await writer.write(batch)
    assert (result.accepted, result.failed) == (6000, ())
    assert await clients(db) == 6000
    async with db.sessions() as session:
        found = await shared_values(session)
        card = await load_card(session, await client_of(db, "tg_7"))
    assert sorted((item.kind, item.users) for item in found) == [
        ("crm", 6000),
        ("lead", 6000),
        ("phone", 6000),
    ]
    assert card is not None and card.identities == {"user": ["tg_7"]}


async def test_a_resent_event_with_other_ids_changes_no_client(db: Database, writer: EventWriter) -> None:
    """A webhook replayed after its source was fixed carries the same event_id with another user id and a
    crm id: it is a duplicate, so it neither makes a client without events nor merges two clients."""
    first = event("tg_1", 1, event_id="ev-1")
    await writer.write(rows(first, event("tg_2", 2, crm_id="BX_2", event_id="ev-2")))
    alone = await writer.write(rows({**first, "user_id": "wa_8"}))
    replayed = {**first, "user_id": "wa_9", "crm_id": "BX_2"}
    beside_a_new_one = await writer.write(rows(event("tg_3", 3, event_id="ev-3"), replayed))
    assert (alone.accepted, alone.duplicates) == (0, 1)
    assert (beside_a_new_one.accepted, beside_a_new_one.duplicates) == (1, 1)
    assert await clients(db) == 3
    assert await client_of(db, "tg_1") != await client_of(db, "tg_2")
    async with db.sessions() as session:
        assert await find_client_ids(session, "wa_8") == await find_client_ids(session, "wa_9") == []
    assert await events_by_client(db) == {
        user: {await client_of(db, user)} for user in ("tg_1", "tg_2", "tg_3")
    }


async def test_unlink_takes_one_user_id_out_and_keeps_it_out(db: Database, writer: EventWriter) -> None:
    phone = {"phone": "+7 917 222-33-44"}
    await writer.write(
        rows(
            event("tg_a", 1, name="Ильдар", **phone),
            event("wa_b", 2, crm_id="BX_b", **phone),
            event("wa_b", 3, message="второе"),
        )
    )
    shared_client = await client_of(db, "tg_a")
    assert await client_of(db, "wa_b") == shared_client
    policy = IdentityPolicy()

    done = await db.writes.run(partial(unlink, user_id="wa_b", policy=policy))

    assert done is not None and done.from_client == shared_client != done.to_client
    assert done.undone == [("phone", "+79172223344")]
    assert await client_of(db, "tg_a") == shared_client
    assert await client_of(db, "wa_b") == done.to_client == await client_of(db, "BX_b")
    assert (await events_by_client(db))["wa_b"] == {done.to_client}
    # The running writer knew wa_b as the shared client; its next batch knows better. The phone still
    # joins others, just not wa_b.
    await writer.write(rows(event("wa_b", 4, **phone), event("vk_c", 5, **phone)))
    assert await client_of(db, "wa_b") == done.to_client
    assert await client_of(db, "vk_c") == shared_client
    assert (await events_by_client(db))["wa_b"] == {done.to_client}
    async with db.sessions() as session:
        card = await load_card(session, shared_client)
    assert card is not None and card.joined_by == [JoinedBy("phone", "+79172223344", ["tg_a", "vk_c"])]

    alone = await db.writes.run(partial(unlink, user_id="wa_b", policy=policy))
    assert alone is not None and alone.from_client == alone.to_client
    assert await db.writes.run(partial(unlink, user_id="tg_nobody", policy=policy)) is None


async def test_the_oldest_user_id_can_be_taken_out_too(db: Database, writer: EventWriter) -> None:
    await writer.write(rows(event("tg_first", 1, crm_id="BX_1"), event("wa_second", 2, crm_id="BX_1")))
    client_id = await client_of(db, "tg_first")
    done = await db.writes.run(partial(unlink, user_id="tg_first", policy=IdentityPolicy()))
    assert done is not None and done.to_client != client_id
    assert await client_of(db, "wa_second") == client_id  # the others keep the client
    assert await client_of(db, "tg_first") == done.to_client


def _upgrade_to(connection: Any, revision: str) -> None:
    command.upgrade(_alembic_config(connection), revision)


async def test_the_upgrade_brings_stored_identities_under_the_rules(database_url: str) -> None:
    """A store from before 0011_identities: strangers merged through crm_id "0" and through an id seven
    user ids share, a phone kept as digits, a five-digit "phone"."""
    moment = datetime(2025, 3, 1, 9, tzinfo=UTC)
    merged = {"0": ["tg_a", "tg_b"], "BX_67890": [f"tg_s{n}" for n in range(7)]}
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_to, "0008_report_columns")
            made = await conn.execute(
                insert(Client).returning(Client.id, sort_by_parameter_order=True),
                [{"created_at": moment}] * 3,
            )
            first, second, third = made.scalars()
            identities: list[dict[str, Any]] = []
            stored: list[dict[str, Any]] = []
            for client_id, (crm_id, users) in zip((first, second), merged.items(), strict=True):
                identities.append({"client_id": client_id, "kind": "crm", "value": crm_id})
                for user in users:
                    identities.append({"client_id": client_id, "kind": "user", "value": user})
                    stored.append({"client_id": client_id, "user_id": user, "crm_id": crm_id})
            identities += [
                {"client_id": third, "kind": "user", "value": "wa_p"},
                {"client_id": third, "kind": "phone", "value": "79175551234"},
                {"client_id": third, "kind": "phone", "value": "12345"},
            ]
            stored.append({"client_id": third, "user_id": "wa_p", "phone": "8 (917) 555-12-34"})
            await conn.execute(
                insert(ClientIdentity), [{**item, "first_seen_at": moment} for item in identities]
            )
            await conn.execute(
                insert(StoredEvent),
                [
                    {
                        "event_id": f"old-{n}",
                        "ts": moment,
                        "received_at": moment,
                        "event": "message_received",
                        "channel": "telegram",
                        "actor": "client",
                        "crm_id": None,
                        "phone": None,
                        **item,
                    }
                    for n, item in enumerate(stored)
                ],
            )
        await migrate(engine)
    finally:
        await engine.dispose()
    db = await open_database(database_url)
    try:
        assert await client_of(db, "tg_a") != await client_of(db, "tg_b")
        assert len({await client_of(db, user) for user in merged["BX_67890"]}) == 7
        assert {user: len(found) for user, found in (await events_by_client(db)).items()} == {
            user: 1 for users in [*merged.values(), ["wa_p"]] for user in users
        }
        for user, found in (await events_by_client(db)).items():
            assert found == {await client_of(db, user)}
        assert await client_of(db, "89175551234") == third
        async with db.sessions() as session:
            card = await load_card(session, third)
            [value] = await shared_values(session)
            assert await find_client_ids(session, "0") == []
        assert card is not None and card.identities == {"user": ["wa_p"], "phone": ["+79175551234"]}
        assert (value.kind, value.value, value.users) == ("crm", "BX_67890", 7)
    finally:
        await db.close()
