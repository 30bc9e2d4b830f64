"""Property-based fuzzing of ``POST /v1/events`` over real HTTP against the real ingest app and SQLite.

Properties for any body: never a 5xx; a 400 names its reason; every rejection names ``index``, ``field``
and a reason; every event that was valid when sent is stored, whatever its neighbours were.
"""

from __future__ import annotations

import http.client
import json
import math
import uuid
from collections.abc import Iterator
from datetime import timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import STANDARD_EVENTS
from tests.live_ingest import LiveIngest, live_ingest

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveIngest]:
    with live_ingest(tmp_path_factory.mktemp("fuzz")) as live:
        yield live


# ---- values -------------------------------------------------------------------------------------------

HOSTILE_TEXT = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(codec=None, categories=["Cc", "Cf", "Cs", "Zl", "Zp"])),
    st.sampled_from(["</b>", "<script>", "\u202e", "\u200b", "\x00", "NaN", "", " ", "💇‍♀️", "\ud800"]),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63 - 2, max_value=2**80),
    st.integers(min_value=-(2**80), max_value=-(2**63) + 2),
    st.floats(allow_nan=True, allow_infinity=True),
    HOSTILE_TEXT,
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(HOSTILE_TEXT, inner, max_size=4),
    max_leaves=12,
)
OFFSETS = st.integers(-14 * 60, 14 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes)))
TIMESTAMPS = st.one_of(
    st.datetimes(timezones=st.none() | OFFSETS).map(lambda moment: moment.isoformat()),
    st.sampled_from(["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "2025-02-30", "24:00", ""]),
)
FIELDS = [
    "timestamp",
    "event",
    "user_id",
    "channel",
    "phone",
    "name",
    "message",
    "confidence",
    "response_time_ms",
    "amount",
    "appointment_at",
    "lat",
    "lon",
    "actor",
    "event_id",
    "utm",
]
SAFE_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=40
)


@st.composite
def valid_events(draw: st.DrawFn) -> dict[str, Any]:
    """An event the contract accepts, with hostile but legal text; its ``event_id`` finds it in the DB."""
    event: dict[str, Any] = {
        "timestamp": draw(
            st.sampled_from(["2025-03-01T10:00:00+03:00", "2025-03-01T10:00:00", "2025-03-01"])
        ),
        "event": draw(st.sampled_from(STANDARD_EVENTS)),
        "user_id": draw(SAFE_TEXT.filter(bool)),
        "channel": "telegram",
        "event_id": f"fz-{draw(st.uuids())}",
    }
    for name in draw(st.sets(st.sampled_from(["message", "name", "phone", "utm"]), max_size=4)):
        event[name] = draw(SAFE_TEXT)
    return event


@st.composite
def mutated_events(draw: st.DrawFn) -> Any:
    """A valid event broken in one or more ways, or not an object at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON_VALUES)
    event = draw(valid_events())
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(FIELDS))
        if name in ("timestamp", "appointment_at") and draw(st.booleans()):
            event[name] = draw(TIMESTAMPS)
        elif draw(st.booleans()):
            event[name] = draw(JSON_VALUES)
        else:
            event.pop(name, None)
    return event


# ---- serialising what no JSON library would write --------------------------------------------------


def dump(value: Any, duplicate_keys: bool = False) -> str:
    """JSON text with NaN/Infinity literals, any int, lone surrogates, and optionally repeated keys."""
    if isinstance(value, dict):
        pairs = [f"{dump(str(key))}:{dump(item, duplicate_keys)}" for key, item in value.items()]
        if duplicate_keys and value:
            key, item = next(iter(value.items()))
            pairs.insert(0, f"{dump(str(key))}:{dump(item)}")
        return "{" + ",".join(pairs) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dump(item, duplicate_keys) for item in value) + "]"
    return json.dumps(value, allow_nan=True, ensure_ascii=False)


def encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")  # a lone surrogate becomes invalid UTF-8 on the wire


def is_strict_json(value: Any) -> bool:
    """Can a strict RFC 8259 parser read it: no NaN/Infinity literal, no lone surrogate?"""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, int):
        return True  # beyond 64 bits orjson reads a float, which the fields' bounds then judge
    if isinstance(value, str):
        return not any(0xD800 <= ord(char) <= 0xDFFF for char in value)
    if isinstance(value, list):
        return all(is_strict_json(item) for item in value)
    return all(is_strict_json(key) and is_strict_json(item) for key, item in value.items())


# ---- the oracle -----------------------------------------------------------------------------------------


def check_answer(status: int, raw: bytes, count: int) -> dict[str, Any]:
    assert status < 500, raw[:500]
    assert status in (202, 207, 400, 422), (status, raw[:500])
    answer = orjson.loads(raw)
    if status == 400:
        assert isinstance(answer["error"], str) and answer["error"]
        return {"accepted": 0, "duplicates": 0, "errors": []}
    errors = answer.get("errors", [])
    assert (status == 202) == (not errors)
    for error in errors:
        assert set(error) == {"index", "field", "message"}
        assert isinstance(error["index"], int) and 0 <= error["index"] < count
        assert error["field"] is None or (isinstance(error["field"], str) and error["field"])
        assert isinstance(error["message"], str) and error["message"]
    rejected = {error["index"] for error in errors}
    assert answer["accepted"] + answer["duplicates"] + len(rejected) == count
    assert status != 422 or answer["accepted"] + answer["duplicates"] == 0
    return answer


def fresh_ids(items: list[tuple[Any, Any]]) -> None:
    """Hypothesis replays examples; a new ``event_id`` per send keeps one example's rows its own."""
    for _, item in items:
        if isinstance(item, dict) and isinstance(item.get("event_id"), str):
            item["event_id"] = f"fz-{uuid.uuid4()}"


def mixed_batches() -> st.SearchStrategy[list[tuple[bool, Any]]]:
    item = st.one_of(valid_events().map(lambda e: (True, e)), mutated_events().map(lambda e: (False, e)))
    return st.lists(item, min_size=1, max_size=8)


@FUZZ
@given(batch=mixed_batches(), duplicate_keys=st.booleans())
def test_json_batches_keep_valid_neighbours(
    server: LiveIngest, batch: list[tuple[bool, Any]], duplicate_keys: bool
) -> None:
    fresh_ids(batch)
    items = [item for _, item in batch]
    status, raw, _ = server.post(encode(dump(items, duplicate_keys)))
    answer = check_answer(status, raw, len(items))
    valid = [item["event_id"] for ok, item in batch if ok]
    if not is_strict_json(items):
        # NaN, Infinity or a lone surrogate anywhere: the body is not JSON we can read; nothing is stored.
        assert status == 400
        assert server.stored_ids(valid) == set()
        return
    assert status != 400
    rejected = {error["index"] for error in answer.get("errors", [])}
    assert not rejected & {index for index, (ok, _) in enumerate(batch) if ok}
    assert server.stored_ids(valid) == set(valid)


NDJSON_LINE = st.one_of(
    valid_events().map(lambda e: ("valid", e)),
    mutated_events().map(lambda e: ("mutated", e)),
    st.sampled_from([b"", b"   ", b"\t", b"\r"]).map(lambda b: ("blank", b)),
    st.binary(max_size=30).filter(lambda b: b"\n" not in b).map(lambda b: ("bytes", b)),
    st.sampled_from([b"{", b"[1,", b'{"a":NaN', b"\xff\xfe", b"\xc3\x28", b"[" * 2000]).map(
        lambda b: ("bytes", b)
    ),
)


@FUZZ
@given(lines=st.lists(NDJSON_LINE, min_size=1, max_size=10), crlf=st.booleans())
def test_ndjson_with_blank_and_broken_lines_keeps_valid_lines(
    server: LiveIngest, lines: list[tuple[str, Any]], crlf: bool
) -> None:
    fresh_ids(lines)
    wire = [item if kind in ("blank", "bytes") else encode(dump(item)) for kind, item in lines]
    separator = b"\r\n" if crlf else b"\n"
    status, raw, _ = server.post(separator.join(wire), content_type="application/x-ndjson")
    nonblank = [(kind, item) for (kind, item), line in zip(lines, wire, strict=True) if line.strip()]
    answer = check_answer(status, raw, len(nonblank))
    valid = [item["event_id"] for kind, item in nonblank if kind == "valid"]
    if status == 400:
        assert not valid  # only a body with no readable line at all is refused whole
        return
    rejected = {error["index"] for error in answer.get("errors", [])}
    assert not rejected & {index for index, (kind, _) in enumerate(nonblank) if kind == "valid"}
    assert server.stored_ids(valid) == set(valid)


@FUZZ
@given(body=st.binary(max_size=300), media=st.sampled_from(["application/json", "application/x-ndjson"]))
def test_arbitrary_bytes_never_break_the_server(server: LiveIngest, body: bytes, media: str) -> None:
    status, raw, _ = server.post(body, content_type=media)
    assert status < 500 and status in (202, 207, 400, 422), (status, raw[:300])
    answer = orjson.loads(raw)
    assert answer.get("error") or "accepted" in answer


# ---- the cases that found something or are too big to generate ------------------------------------------


def event(**fields: Any) -> dict[str, Any]:
    return {
        "timestamp": "2025-03-01T10:00:00+03:00",
        "event": "message_received",
        "user_id": "tg_1",
        "event_id": f"fz-{uuid.uuid4()}",
        **fields,
    }


def test_one_mebibyte_string_is_rejected_by_field_and_neighbours_stored(server: LiveIngest) -> None:
    good, huge = event(), event(message="ы" * (1024 * 1024 // 2))
    status, raw, _ = server.post(orjson.dumps([good, huge]))
    answer = check_answer(status, raw, 2)
    assert status == 207
    assert [(e["index"], e["field"]) for e in answer["errors"]] == [(1, "message")]
    assert "16384" in answer["errors"][0]["message"]
    assert server.stored_ids([good["event_id"], huge["event_id"]]) == {good["event_id"]}


def test_deeply_nested_extra_is_refused_with_a_reason(server: LiveIngest) -> None:
    body = b'{"timestamp":"2025-03-01T10:00:00","event":"x","user_id":"u","deep":' + b"[" * 5000 + b"]" * 5000
    status, raw, _ = server.post(body + b"}")
    assert status == 400
    assert "not valid JSON" in orjson.loads(raw)["error"]


@pytest.mark.parametrize(
    ("literal", "field", "reason"),
    [
        (b"NaN", None, "line 2: not valid JSON"),
        (b"Infinity", None, "line 2: not valid JSON"),
        (b"-Infinity", None, "line 2: not valid JSON"),
        (b"1e400", None, "line 2: not valid JSON"),
        (b"1" * 40, "amount", "less than or equal to 1000000000000"),  # read as 1.1e39
    ],
)
def test_non_json_numbers_in_an_ndjson_line_reject_only_that_line(
    server: LiveIngest, literal: bytes, field: str | None, reason: str
) -> None:
    good = event()
    bad = b'{"timestamp":"2025-03-01T10:00:00","event":"x","user_id":"u","amount":' + literal + b"}"
    status, raw, _ = server.post(orjson.dumps(good) + b"\n" + bad, content_type="application/x-ndjson")
    answer = check_answer(status, raw, 2)
    assert status == 207
    [error] = answer["errors"]
    assert (error["index"], error["field"]) == (1, field)
    assert reason in error["message"]
    assert server.stored_ids([good["event_id"]]) == {good["event_id"]}


def test_huge_numbers_in_known_fields_name_the_field(server: LiveIngest) -> None:
    batch = [event(response_time_ms=2**62), event(amount=1e300), event(confidence=1e-320), event()]
    status, raw, _ = server.post(orjson.dumps(batch))
    answer = check_answer(status, raw, 4)
    assert status == 207
    assert {(e["index"], e["field"]) for e in answer["errors"]} == {(0, "response_time_ms"), (1, "amount")}
    assert len(server.stored_ids([item["event_id"] for item in batch])) == 2


@pytest.mark.parametrize("field", ["timestamp", "appointment_at"])
@pytest.mark.parametrize("moment", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "0001-01-01"])
def test_times_that_overflow_in_utc_are_rejected_by_field_not_a_500(
    server: LiveIngest, field: str, moment: str
) -> None:
    # Found by this fuzzing: the conversion to UTC overflowed Python's datetime and the request got a 500.
    good, bad = event(), event(**{field: moment})
    status, raw, _ = server.post(orjson.dumps([good, bad]))
    answer = check_answer(status, raw, 2)
    assert status == 207
    assert [(e["index"], e["field"]) for e in answer["errors"]] == [(1, field)]
    assert "year" in answer["errors"][0]["message"]
    assert server.stored_ids([good["event_id"], bad["event_id"]]) == {good["event_id"]}


@pytest.mark.parametrize(
    "value", [b"Bearer \xff\xfe", b"Bearer \xed\xa0\x80", "Bearer тест".encode(), b"Bearer"]
)
def test_undecodable_authorization_header_is_401_not_a_500(server: LiveIngest, value: bytes) -> None:
    # Found while fuzzing headers: bytes that are not UTF-8 crashed the token check with a 500.
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        connection.putrequest("POST", "/v1/events")
        connection.putheader("Authorization", value)
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", "2")
        connection.endheaders(b"{}")
        response = connection.getresponse()
        status, raw = response.status, response.read()
    finally:
        connection.close()
    assert status == 401
    assert "token" in orjson.loads(raw)["error"]
