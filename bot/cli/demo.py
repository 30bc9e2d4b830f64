"""``leadtrail demo``: a month of a Kazan barbershop, sent through the real HTTP ingest into a local file.

The month goes the way a salon's data goes: the Telegram clients write to the example salon assistant
(``bot/demo/salon_assistant``, fed offline by ``bot.demo.assistant``), whose dialog — messages, answers
with their response times and intents, leads, bookings, refusals — is logged by the SDK's aiogram
middleware; the other channels, CRM ids, payments, no-shows and managers' messages come from
``bot.demo.generator``. Both reach the collector through the SDK's ``EventClient``.
No token and no network: the ingest server listens on 127.0.0.1 for the duration of the demo only.
"""

from __future__ import annotations

import argparse
import secrets
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from bot.cli.errors import CommandFailed
from bot.demo.assistant import NumberingSink, play_month
from bot.demo.booking_system import COMPANIES, Webhook
from bot.demo.generator import DemoMonth, generate_demo_month, pick_showcase_user
from bot.demo.salon_assistant import model
from bot.ingestion.http_app import ServiceState
from bot.runtime.service import create_writer, start_ingest_site
from bot.settings import Settings
from leadtrail_sdk import EventClient
from reports.charts import render_client_journey
from reports.drawing import drawn
from reports.metrics import ai_cost
from reports.owner_report import build_report
from reports.periods import Period
from reports.texts import demo as texts
from reports.texts.client import terminal_timeline
from reports.texts.html import plain_text
from storage.bi_views import sync_bi_zone
from storage.chart_queries import client_journey
from storage.database import Database, open_database
from storage.event_types import EventType
from storage.outbox import Attachment
from storage.summary import client_count, event_count
from storage.timeline import client_model_usage, event_fields, find_client_ids, load_card, load_events

DB_NAME = "leadtrail-demo.db"
BATCH_SIZE = 500


async def _send_all(
    base_url: str, tokens: tuple[str, str], month: DemoMonth, spool: Path
) -> tuple[int, list[dict[str, Any]]]:
    """The assistant's and the other channels' events through the same EventClient a salon's assistant
    uses, the YCLIENTS webhooks to the webhook endpoint: how many events were delivered, and what the
    EventClient logged."""
    token, webhook_token = tokens
    client = EventClient(base_url, token, spool_dir=spool, batch_size=BATCH_SIZE)
    await client.start()
    sink = NumberingSink(client)
    async with aiohttp.ClientSession() as http:

        async def deliver(webhook: Webhook) -> None:
            async with http.post(f"{base_url}/v1/yclients/{webhook_token}", json=webhook.body) as response:
                if response.status != 200 or (await response.json())["rejected"]:
                    raise CommandFailed(f"the demo's YCLIENTS webhook was refused: HTTP {response.status}")

        try:
            await play_month(month, sink, deliver)
        finally:
            delivered = await client.flush(timeout=120)
            await client.aclose()
    if not delivered or client.stats.rejected or client.stats.spooled:
        raise CommandFailed(f"the demo could not deliver every event: {client.stats}")
    return client.stats.sent, sink.logged


def _fresh_database_url(out: Path) -> str:
    out.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        (out / f"{DB_NAME}{suffix}").unlink(missing_ok=True)
    return f"sqlite+aiosqlite:///{(out / DB_NAME).resolve()}"


async def _load(
    settings: Settings, db: Database, month: DemoMonth, spool: Path
) -> tuple[int, list[dict[str, Any]], float]:
    writer = create_writer(settings, db)
    await writer.start()
    tokens = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    yclients = {
        "webhook_token": _secret(tokens[1]),
        "locations": {str(n): name for name, n in COMPANIES.items()},
    }
    # The assistant's simulated model calls are priced at the public prices unless the config has its own.
    prices = settings.ai.prices or list(model.PRICES)
    demo_settings = settings.model_copy(
        update={
            "ingest": settings.ingest.model_copy(
                update={"tokens": [_secret(tokens[0])], "host": "127.0.0.1"}
            ),
            "ai": settings.ai.model_copy(update={"prices": prices}),
            "yclients": settings.yclients.model_copy(update=yclients),
        }
    )
    runner, port = await start_ingest_site(demo_settings, db, writer, ServiceState(), port=0)
    started = time.perf_counter()
    try:
        sent, events = await _send_all(f"http://127.0.0.1:{port}", tokens, month, spool)
    finally:
        await runner.cleanup()
        await writer.close()
    return sent, events, time.perf_counter() - started


def _secret(value: str) -> Any:
    from pydantic import SecretStr

    return SecretStr(value)


async def _write_showcase(
    db: Database, settings: Settings, out: Path, period: Period, showcase: str
) -> tuple[str, list[Path], str]:
    """The owner's report (text and charts) and one client's card, timeline and journey, as files."""
    zone = settings.tz
    report = await build_report(db.sessions, settings.report_scope(period), with_charts=True)
    text = plain_text(report.text)
    async with db.sessions() as session:
        [client_id] = (await find_client_ids(session, showcase))[:1]
        card = await load_card(session, client_id)
        assert card is not None
        cost = ai_cost(await client_model_usage(session, client_id), settings.ai.currency)
        timeline = terminal_timeline(
            card, [event_fields(event) for event in await load_events(session, client_id)], zone, cost
        )
        journey = await client_journey(session, client_id, zone)
    journey_png = await drawn(render_client_journey, journey)
    files = [out / "report.txt", out / "client.txt"]
    files[0].write_text(text + "\n", encoding="utf-8")
    files[1].write_text(timeline + "\n", encoding="utf-8")
    for item in (*report.charts, Attachment("client-journey.png", journey_png)):
        (out / item.filename).write_bytes(item.content)
        files.append(out / item.filename)
    return text, files, timeline


async def run_demo(settings: Settings, args: argparse.Namespace) -> int:
    out, days, seed = Path(args.out), args.days, args.seed
    zone = settings.tz
    end = (datetime.now(zone) - timedelta(days=1)).date()
    first_day = end - timedelta(days=days - 1)
    month = generate_demo_month(days=days, end=end, seed=seed, zone=zone)
    url = _fresh_database_url(out)
    db = await open_database(url)
    await sync_bi_zone(db, zone)
    try:
        sent, events, seconds = await _load(settings, db, month, out / "spool")
        showcase = pick_showcase_user(events, month.webhooks)
        async with db.sessions() as session:
            clients = await client_count(session)
            stored = await event_count(session)
        report_text, files, timeline = await _write_showcase(
            db, settings, out, Period(first_day, end), showcase
        )
    finally:
        await db.close()

    print(texts.heading(first_day, end))
    messages = sum(event["event"] == EventType.MESSAGE_RECEIVED for event in events if "message_id" in event)
    print(texts.dialogs(messages))
    print(texts.delivery(len(events), sent, len(month.webhooks), seconds, stored, clients))
    print(report_text)
    print(texts.showcase(showcase))
    print(timeline)
    print(texts.FILES)
    for path in [out / DB_NAME, *files]:
        print(texts.file_line(path))
    print(texts.another_client(url))
    return 0
