"""The one validated path into storage, shared by HTTP, ``leadtrail ingest`` and the Telegram transport."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

import orjson

from bot.ingestion.validation import FieldError, Validated, validate_items
from reports.pricing import PriceTable
from storage.writer import INTERNAL_ERROR, EventWriter, Rejected

_CHANNEL_LABEL = re.compile(r"[A-Za-z0-9_.-]{1,32}")


@dataclass(slots=True)
class IngestOutcome:
    accepted: int = 0
    duplicates: int = 0
    errors: list[FieldError] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len({error.index for error in self.errors})

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"accepted": self.accepted, "duplicates": self.duplicates}
        if self.errors:
            body["errors"] = [error.as_dict() for error in self.errors]
        return body


def _channel_of(item: Any) -> str:
    """The channel a rejected item names, if it looks like one; else "unknown" (a bounded metric label)."""
    channel = item.get("channel") if isinstance(item, dict) else None
    if isinstance(channel, str) and _CHANNEL_LABEL.fullmatch(channel):
        return channel
    return "unknown"


def _payload_text(item: Any) -> str:
    if isinstance(item, str):
        return item
    try:
        return orjson.dumps(item).decode()
    except TypeError:
        return repr(item)


async def ingest_items(
    items: list[Any],
    writer: EventWriter,
    local_zone: tzinfo,
    *,
    source: str,
    first_index: int = 0,
    channels: frozenset[str] | None = None,
    prices: PriceTable | None = None,
) -> IngestOutcome:
    """Validate, store the good items and quarantine the bad ones in one commit, then report.

    ``channels``: the sender may only send these (a scoped token); None means any. ``prices``: the price
    list model calls without a cost are priced from (``ai.prices``).
    """
    validated = validate_items(items, local_zone, first_index, channels=channels, prices=prices)
    result = await writer.write(validated.rows, quarantined(validated, source), source=source)
    # Events that failed alone in the writer (a bug, data the database refused) are quarantined there.
    failed = [FieldError(validated.row_indexes[position], None, INTERNAL_ERROR) for position in result.failed]
    errors = sorted([*validated.errors, *failed], key=lambda error: error.index)
    return IngestOutcome(result.accepted, result.duplicates, errors)


def undecodable(source: str, body: bytes, reason: str) -> Rejected:
    """A body that is not what its Content-Type says, kept so the operator sees what the source sends."""
    return Rejected(
        source=source, payload=body.decode("utf-8", "replace"), errors=[{"field": None, "message": reason}]
    )


def quarantined(validated: Validated, source: str) -> list[Rejected]:
    """The rejected items of a batch with their reasons, as the quarantine keeps them."""
    by_index: dict[int, list[dict[str, Any]]] = {}
    for error in validated.errors:
        by_index.setdefault(error.index, []).append({"field": error.field, "message": error.message})
    return [
        Rejected(
            source=source, payload=_payload_text(item), errors=by_index[index], channel=_channel_of(item)
        )
        for index, item in validated.rejected
    ]
