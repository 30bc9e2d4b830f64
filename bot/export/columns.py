"""The exported columns: the event contract's field names (so a file reads like the API), typed.

Header names are the contract's English field names in every format: the same names the sources send,
the same in CSV, XLSX and Parquet, so a sheet, a pandas frame and the API documentation agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from enum import Enum
from typing import Any

import orjson


class Kind(Enum):
    TEXT = "text"
    TIME = "time"
    FLOAT = "float"
    INT = "int"


@dataclass(frozen=True, slots=True)
class Column:
    """``source`` is the stored column; ``width`` is the XLSX column width in characters."""

    name: str
    source: str
    kind: Kind
    width: int


def _text(name: str, width: int = 16) -> Column:
    return Column(name, name, Kind.TEXT, width)


COLUMNS: tuple[Column, ...] = (
    Column("timestamp", "ts", Kind.TIME, 22),
    _text("event", 20),
    _text("channel", 12),
    _text("user_id", 18),
    Column("client_id", "client_id", Kind.INT, 10),
    _text("actor", 10),
    _text("crm_id"),
    _text("lead_id"),
    _text("phone"),
    _text("name", 20),
    _text("manager_id"),
    _text("location"),
    _text("scenario"),
    _text("service", 20),
    _text("intent", 20),
    _text("action"),
    _text("reason", 24),
    _text("status", 12),
    _text("currency", 10),
    _text("message", 50),
    _text("assistant_response", 50),
    _text("prompt", 30),
    Column("confidence", "confidence", Kind.FLOAT, 11),
    Column("response_time_ms", "response_time_ms", Kind.INT, 17),
    Column("amount", "amount", Kind.FLOAT, 12),
    Column("appointment_at", "appointment_at", Kind.TIME, 22),
    _text("appointment_id", 14),
    Column("lat", "lat", Kind.FLOAT, 10),
    Column("lon", "lon", Kind.FLOAT, 10),
    _text("event_id", 30),
    _text("model", 20),
    _text("provider", 12),
    Column("input_tokens", "input_tokens", Kind.INT, 13),
    Column("output_tokens", "output_tokens", Kind.INT, 14),
    Column("cached_tokens", "cached_tokens", Kind.INT, 14),
    Column("cost", "cost", Kind.FLOAT, 10),
    Column("received_at", "received_at", Kind.TIME, 22),
    # Unknown fields the source sent, as one JSON object (empty when there were none).
    _text("extra", 40),
)
HEADER: tuple[str, ...] = tuple(column.name for column in COLUMNS)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def local_values(row: Mapping[str, Any], zone: tzinfo) -> list[Any]:
    """One stored event as typed values in ``COLUMNS`` order: aware local times, extras as JSON text."""
    values: list[Any] = []
    for column in COLUMNS:
        value = row[column.source]
        if value is None:
            values.append(None)
        elif column.kind is Kind.TIME:
            values.append(value.astimezone(zone))
        elif column.source == "extra":
            values.append(orjson.dumps(value, default=_json_default).decode() if value else None)
        else:
            values.append(value)
    return values
