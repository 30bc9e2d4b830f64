"""Decoding request bodies and files into JSON items: one event, a JSON array, or NDJSON lines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from bot.ingestion.validation import BrokenLine

JSON_TYPES = frozenset({"application/json"})
NDJSON_TYPES = frozenset(
    {"application/x-ndjson", "application/ndjson", "application/jsonl", "application/jsonlines"}
)


class UndecodableBody(ValueError):
    """The body is not JSON or NDJSON at all (HTTP 400)."""


@dataclass(slots=True)
class NdjsonItems:
    """Items in order, with the line each came from (blank lines are skipped, so they differ)."""

    items: list[Any] = field(default_factory=list)
    line_numbers: list[int] = field(default_factory=list)

    @property
    def all_broken(self) -> bool:
        return bool(self.items) and all(isinstance(item, BrokenLine) for item in self.items)


def decode_json(body: bytes) -> list[Any]:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise UndecodableBody(f"body is not valid JSON: {exc}") from None
    return value if isinstance(value, list) else [value]


def parse_ndjson_lines(lines: list[bytes], first_line: int = 1) -> NdjsonItems:
    """A broken line stays in place as a ``BrokenLine``, so the lines after it still count."""
    parsed = NdjsonItems()
    for line_number, line in enumerate(lines, start=first_line):
        if not line.strip():
            continue
        try:
            item: Any = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            item = BrokenLine(line_number, line, f"line {line_number}: not valid JSON: {exc}")
        parsed.items.append(item)
        parsed.line_numbers.append(line_number)
    return parsed


def decode_ndjson(body: bytes) -> list[Any]:
    parsed = parse_ndjson_lines(body.split(b"\n"))
    if parsed.all_broken:
        raise UndecodableBody("body is not valid NDJSON: no line is a JSON value")
    return parsed.items


def decode_body(body: bytes, media_type: str) -> list[Any]:
    return decode_ndjson(body) if media_type in NDJSON_TYPES else decode_json(body)
