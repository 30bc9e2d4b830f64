"""``leadtrail quarantine``: what the sources sent that could not be stored, and why."""

from __future__ import annotations

import argparse

from bot.cli.common import local_iso, opened_database, print_json
from bot.settings import Settings
from reports.texts import cli as texts
from reports.texts.numbers import NONE
from storage.quarantine import count_rejections, recent_rejections

_PREVIEW_CHARS = 300


async def show_quarantine(settings: Settings, args: argparse.Namespace) -> int:
    limit, as_json = args.limit, args.json
    zone = settings.tz
    async with opened_database(settings) as db, db.sessions() as session:
        total = await count_rejections(session)
        rows = await recent_rejections(session, limit)
    if as_json:
        print_json(
            {
                "total": total,
                "items": [
                    {
                        "id": row.id,
                        "received_at": row.received_at,
                        "source": row.source,
                        "errors": row.errors,
                        "payload": row.payload,
                        "payload_bytes": row.payload_bytes,
                    }
                    for row in rows
                ],
            },
            zone,
        )
        return 0
    print(texts.QUARANTINE_HEADER.format(total=total, shown=len(rows)))
    for row in rows:
        reasons = "; ".join(f"{error.get('field') or NONE}: {error.get('message')}" for error in row.errors)
        preview = row.payload if len(row.payload) <= _PREVIEW_CHARS else row.payload[:_PREVIEW_CHARS] + "…"
        print(f"#{row.id} {local_iso(row.received_at, zone)} [{row.source}] {reasons}\n    {preview}")
    return 0
