"""The event contract: what is accepted, how it is normalised, and how rejections are explained."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.ingestion.payloads import UndecodableBody, decode_json, decode_ndjson
from bot.ingestion.validation import validate_items
from storage.phones import normalize_phone
from tests.conftest import SEED_EVENT

MOSCOW = ZoneInfo("Europe/Moscow")


def test_seed_event_is_accepted_verbatim() -> None:
    result = validate_items([SEED_EVENT], MOSCOW)
    assert result.errors == []
    row = result.rows[0]
    assert row["ts"] == datetime(2025, 1, 1, 9, 34, 56, tzinfo=UTC)
    assert row["lat"] == pytest.approx(55.7887)
    assert row["lon"] == pytest.approx(49.1221)
    assert row["actor"] == "client"
    assert row["channel"] == "telegram"
    assert row["event_id"].startswith("h:")


def test_content_hash_is_stable_across_equal_times_and_differs_for_other_content() -> None:
    same_moment = {**SEED_EVENT, "timestamp": "2025-01-01T09:34:56Z"}
    other = {**SEED_EVENT, "message": "Другое сообщение"}
    ids = [validate_items([item], MOSCOW).rows[0]["event_id"] for item in (SEED_EVENT, same_moment, other)]
    assert ids[0] == ids[1]
    assert ids[0] != ids[2]


def test_content_hash_of_the_seed_event_is_the_one_earlier_releases_stored() -> None:
    """Sources that send no event_id rely on this key across upgrades: a resent event stays one event,
    so a field added to the contract must not change the key of events that do not set it."""
    [row] = validate_items([SEED_EVENT], MOSCOW).rows
    assert row["event_id"] == "h:VWBOM8hbgQdvDUHdYVei6C5r"


def test_naive_timestamp_is_local_time_and_milliseconds_are_kept() -> None:
    row = validate_items([{**SEED_EVENT, "timestamp": "2025-06-01T00:00:00.123"}], MOSCOW).rows[0]
    assert row["ts"] == datetime(2025, 5, 31, 21, 0, 0, 123000, tzinfo=UTC)


def test_unknown_fields_are_kept_and_explicit_event_id_wins() -> None:
    row = validate_items([{**SEED_EVENT, "utm_source": "vk", "event_id": "my-1"}], MOSCOW).rows[0]
    assert row["extra"] == {"utm_source": "vk"}
    assert row["event_id"] == "my-1"


def test_actor_is_derived_from_event_when_absent() -> None:
    items = [
        {**SEED_EVENT, "event": "assistant_response"},
        {**SEED_EVENT, "event": "manager_message"},
        {**SEED_EVENT, "event": "payment_status"},
        {**SEED_EVENT, "event": "payment_status", "actor": "manager"},
    ]
    assert [row["actor"] for row in validate_items(items, MOSCOW).rows] == [
        "assistant",
        "manager",
        "system",
        "manager",
    ]


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        ({"timestamp": "вчера"}, "timestamp", "datetime"),
        ({"timestamp": 1735720496}, "timestamp", "ISO-8601"),
        ({"event": "Message Received"}, "event", "lowercase"),
        ({"user_id": ""}, "user_id", "at least 1"),
        ({"user_id": "x" * 129}, "user_id", "at most 128"),
        ({"confidence": 1.5}, "confidence", "less than or equal to 1"),
        ({"lat": "91"}, "lat", "less than or equal to 90"),
        ({"lon": "east"}, "lon", "number"),
        ({"response_time_ms": -1}, "response_time_ms", "greater than or equal to 0"),
        ({"message": "я" * (16 * 1024 + 1)}, "message", "at most 16384"),
        ({"reason": "x" * 257}, "reason", "at most 256"),
        ({"actor": "robot"}, "actor", "client"),
        ({"message": "a\x00b"}, "message", "NUL"),
    ],
)
def test_each_rejection_names_the_field_and_the_reason(
    change: dict[str, object], field: str, fragment: str
) -> None:
    result = validate_items([SEED_EVENT, {**SEED_EVENT, **change}], MOSCOW)
    assert len(result.rows) == 1
    assert [(error.index, error.field) for error in result.errors] == [(1, field)]
    assert fragment in result.errors[0].message


def test_missing_required_fields_and_non_objects_are_named() -> None:
    result = validate_items([{"event": "x"}, 5, None], MOSCOW)
    assert {(error.index, error.field) for error in result.errors} == {
        (0, "timestamp"),
        (0, "user_id"),
        (1, None),
        (2, None),
    }
    assert "required" in result.errors[0].message
    assert {index for index, _ in result.rejected} == {0, 1, 2}


def test_numbers_are_accepted_for_string_ids() -> None:
    row = validate_items([{**SEED_EVENT, "crm_id": 67890, "user_id": 12345}], MOSCOW).rows[0]
    assert (row["crm_id"], row["user_id"]) == ("67890", "12345")


def test_ndjson_keeps_positions_of_broken_lines() -> None:
    body = b'{"a": 1}\n\n{broken\n  \n{"b": 2}\n'
    items = decode_ndjson(body)
    result = validate_items(items, MOSCOW)
    broken = [error for error in result.errors if error.index == 1]
    assert len(items) == 3
    assert broken and "line 3" in broken[0].message


def test_undecodable_bodies_are_refused() -> None:
    with pytest.raises(UndecodableBody):
        decode_json(b"\xff\xfe not json")
    with pytest.raises(UndecodableBody):
        decode_ndjson(b"{broken\nalso broken\n")
    with pytest.raises(UndecodableBody):
        decode_json(b"[" * 5000 + b"]" * 5000)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+7 (917) 123-45-67", "+79171234567"),
        ("8 917 123 45 67", "+79171234567"),
        ("89171234567", "+79171234567"),
        ("9171234567", "+79171234567"),
        ("+44 20 7946 0958", "+442079460958"),
        ("12", None),
        ("12345", None),  # five digits are no phone
        ("+7 999 999-99-99", None),  # one digit repeated after the country code: a filler
        ("не скажу", None),
    ],
)
def test_phone_normalisation(raw: str, expected: str | None) -> None:
    assert normalize_phone(raw) == expected
