"""The connectors of this process: their webhook routes, which every ``leadtrail run`` serves, and their
workers (the Bitrix24 job queue, the YCLIENTS reconciliation), which only the leader runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web

from bot.connectors.bitrix24.inbound import inbound_for
from bot.connectors.bitrix24.worker import CrmWorker, prepare_crm_worker
from bot.connectors.yclients.api import YclientsApi
from bot.connectors.yclients.intake import YclientsIntake
from bot.connectors.yclients.sync import YclientsSync
from bot.connectors.yclients.webhook import YclientsWebhook
from bot.settings import Settings
from storage.database import Database
from storage.writer import EventWriter

RouteInstaller = Callable[[web.Application], None]


class LeaderWorker(Protocol):
    """A background loop that must run in one process only: started on election, paused on demotion."""

    def start(self) -> None: ...

    async def pause(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class Connectors:
    routes: list[RouteInstaller]
    workers: list[LeaderWorker] = field(default_factory=list)

    async def stop(self) -> None:
        for worker in self.workers:
            await worker.stop()


def webhook_routes(
    settings: Settings, db: Database, writer: EventWriter, crm: CrmWorker | None = None
) -> list[RouteInstaller]:
    """The connectors' webhook endpoints; each answers 401 while its link is not configured."""
    # Without the worker (no webhook_url) nothing would fetch what Bitrix24 reports: refuse it openly.
    bitrix_token = settings.bitrix24.application_token if crm is not None else None
    inbound = inbound_for(
        bitrix_token.get_secret_value() if bitrix_token else None, db, crm.wake if crm else None
    )
    yclients_token = settings.yclients.webhook_token
    yclients = YclientsWebhook(
        yclients_token.get_secret_value().encode() if yclients_token else None,
        YclientsIntake(db, writer, settings.yclients, settings.tz),
        settings.ingest.retry_after_seconds,
    )
    return [inbound.install, yclients.install]


async def prepare_connectors(settings: Settings, db: Database, writer: EventWriter) -> Connectors:
    crm = await prepare_crm_worker(settings, db, writer) if settings.bitrix24.enabled else None
    workers: list[LeaderWorker] = [crm] if crm is not None else []
    config = settings.yclients
    if config.sync_enabled:
        assert config.partner_token is not None and config.user_token is not None
        api = YclientsApi(
            config.api_url,
            config.partner_token.get_secret_value(),
            config.user_token.get_secret_value(),
            requests_per_second=config.requests_per_second,
            timeout_seconds=config.timeout_seconds,
        )
        intake = YclientsIntake(db, writer, config, settings.tz)
        workers.append(YclientsSync(config, db, intake, api, settings.tz))
    return Connectors(webhook_routes(settings, db, writer, crm), workers)
