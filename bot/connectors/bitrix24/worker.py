"""The CRM worker: follows the events table for new leads and drains the CRM job outbox into Bitrix24.

Ingestion never waits on it: the writer only stores events; this task reads them afterwards (a cursor
over ``events.id``), turns each new lead into a job, and runs due jobs at the client's pace. A failed
call is retried with exponential backoff and jitter, then given up with a short reason /crm shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from bot.background import cancel_and_wait
from bot.connectors.bitrix24 import mapping
from bot.connectors.bitrix24.client import Bitrix24Client, Bitrix24Error
from bot.ingestion.validation import validate_items
from bot.settings import Bitrix24Settings, Settings
from reports.texts import crm as crm_texts
from storage import crm_jobs
from storage.crm_lookup import lead_context, owner_of_crm_ids, recent_dialog
from storage.database import Database, StorageUnavailable
from storage.models import CrmJob
from storage.timeline import find_client_ids
from storage.writer import EventWriter

logger = logging.getLogger(__name__)

MAX_RETRY_SECONDS = 3600.0
SCAN_LIMIT = 1000
LEAD, COMMENT, FETCH = "lead", "comment", "fetch"
FETCH_METHODS = {"lead": "crm.lead.get", "deal": "crm.deal.get"}


class JobSkipped(Exception):
    """Nothing to do for this job (e.g. the entity is not a LeadTrail client); recorded as done."""


class CrmWorker:
    def __init__(
        self,
        settings: Bitrix24Settings,
        db: Database,
        writer: EventWriter,
        client: Bitrix24Client,
        *,
        retry_base_seconds: float = 5.0,
    ) -> None:
        self._settings = settings
        self._db = db
        self._writer = writer
        self._client = client
        self._retry_base = retry_base_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def prepare(self) -> None:
        """Fix where reading the events starts, before ingestion begins (a first start skips history)."""
        async with self._db.sessions() as session, session.begin():
            await crm_jobs.events_cursor(session)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="bitrix24")

    def wake(self) -> None:
        self._wake.set()

    async def pause(self) -> None:
        """Stop working the queue (this process is no longer the leader); jobs stay for whoever leads."""
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def stop(self) -> None:
        await self.pause()
        await self._client.close()

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except (StorageUnavailable, SQLAlchemyError, OSError) as exc:
                logger.warning("bitrix24: storage unavailable (%s); will retry", type(exc).__name__)
            except Exception:
                # A bug must not end the link for good; the traceback names code, not client data.
                logger.exception("bitrix24: worker round failed; will retry")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._settings.poll_seconds)
            self._wake.clear()

    async def run_once(self) -> int:
        """Queue the new leads, then run every due job; returns how many jobs were run."""
        while await self.scan_events() == SCAN_LIMIT:
            pass
        ran = 0
        while jobs := await self._due():
            ran += len(jobs)
            fetches = [job for job in jobs if job.kind == FETCH]
            for start in range(0, len(fetches), self._settings.batch_size):
                await self._fetch(fetches[start : start + self._settings.batch_size])
            for job in jobs:
                if job.kind == LEAD:
                    await self._attempt(job, self._link_lead)
                elif job.kind == COMMENT:
                    await self._attempt(job, self._post_comment)
                elif job.kind != FETCH:
                    await self._finish(job, f"unknown job kind {job.kind!r}", retry=False)
        return ran

    async def _due(self) -> list[CrmJob]:
        async with self._db.sessions() as session:
            return await crm_jobs.due_jobs(session, datetime.now(UTC), self._settings.batch_size * 2)

    async def scan_events(self) -> int:
        """Turn new lead events of clients without a CRM id into jobs; returns how many events were read."""
        async with self._db.sessions() as session, session.begin():
            cursor = await crm_jobs.events_cursor(session)
            events = await crm_jobs.events_after(session, cursor, SCAN_LIMIT)
            if not events:
                return 0
            leads = [item for item in events if item.event in self._settings.create_lead_on]
            linked = await crm_jobs.clients_with_crm_id(session, {item.client_id for item in leads})
            for item in leads:
                if item.client_id not in linked:
                    await crm_jobs.enqueue(
                        session,
                        LEAD,
                        {"event_row": item.id, "origin_id": mapping.origin_id(item.client_id)},
                        dedup_key=f"lead:{item.client_id}",
                    )
            await crm_jobs.set_events_cursor(session, events[-1].id)
        if leads:
            self.wake()
        return len(events)

    # --- one job -------------------------------------------------------------------------------------

    async def _attempt(self, job: CrmJob, action: Callable[[CrmJob], Awaitable[None]]) -> None:
        try:
            await action(job)
        except JobSkipped:
            await self._finish(job, None)
        except Bitrix24Error as exc:
            await self._finish(job, str(exc), retry=True)
        except (KeyError, ValueError, TypeError) as exc:
            # A malformed payload or CRM answer: counted as an attempt, so it cannot spin for ever.
            await self._finish(job, f"BAD_DATA: {type(exc).__name__}", retry=True)
        else:
            await self._finish(job, None)

    async def _finish(self, job: CrmJob, error: str | None, *, retry: bool = False) -> None:
        async with self._db.sessions() as session, session.begin():
            if error is None:
                await crm_jobs.mark_done(session, job.id)
                await crm_jobs.record_success(session)
            elif retry and job.attempts + 1 < self._settings.max_attempts:
                await crm_jobs.mark_retry(session, job.id, self._retry_delay(job.attempts), error)
            else:
                # Only the code: a CRM's description may quote the data it refused.
                code = (error or "failed").split(":", 1)[0]
                logger.warning("bitrix24: %s job %d given up: %s", job.kind, job.id, code)
                await crm_jobs.mark_failed(session, job.id, error or "failed")

    def _retry_delay(self, attempts: int) -> timedelta:
        base = min(self._retry_base * 2**attempts, MAX_RETRY_SECONDS)
        return timedelta(seconds=base * random.uniform(0.5, 1.0))

    async def _write(self, item: dict[str, Any]) -> None:
        validated = validate_items([item], UTC)
        if validated.errors:
            raise Bitrix24Error("BAD_ENTITY", validated.errors[0].message[:100])
        await self._writer.write(validated.rows, source="bitrix24")

    # --- a lead for a client -------------------------------------------------------------------------

    async def _link_lead(self, job: CrmJob) -> None:
        async with self._db.sessions() as session:
            context = await lead_context(session, int(job.payload["event_row"]))
        if context is None or context.crm_ids:
            raise JobSkipped
        origin = str(job.payload["origin_id"])
        commands: dict[str, tuple[str, dict[str, Any]]] = {
            "earlier": (
                "crm.lead.list",
                {"filter": {"ORIGINATOR_ID": mapping.ORIGINATOR_ID, "ORIGIN_ID": origin}, "select": ["ID"]},
            )
        }
        if context.phone:
            commands["phone"] = (
                "crm.duplicate.findbycomm",
                {"type": "PHONE", "values": [context.phone]},
            )
        found = await self._client.batch(commands)
        for result in found.values():
            if isinstance(result, Bitrix24Error):
                raise result
        entity, entity_id, created = self._existing(found)
        if entity_id is None:
            fields: dict[str, Any] = {
                "TITLE": f"LeadTrail: {context.name or context.user_id}"[:255],
                "NAME": context.name or "",
                "SOURCE_ID": self._settings.source_id,
                "ORIGINATOR_ID": mapping.ORIGINATOR_ID,
                "ORIGIN_ID": origin,
            }
            if context.phone:
                fields["PHONE"] = [{"VALUE": context.phone, "VALUE_TYPE": "WORK"}]
            entity, entity_id, created = (
                "lead",
                int(await self._client.call("crm.lead.add", {"fields": fields})),
                True,
            )
        entity_crm_id = mapping.crm_id(entity, entity_id)
        await self._write(
            {
                "timestamp": datetime.now(UTC).isoformat(),
                "event": "crm_linked",
                "user_id": context.user_id,
                "channel": context.channel,
                "actor": "system",
                "crm_id": entity_crm_id,
                "status": "created" if created else "found",
                "message": crm_texts.linked_message(entity, entity_crm_id, created),
                "event_id": f"bitrix24:linked:{origin}",
                "source": "bitrix24",
            }
        )
        async with self._db.sessions() as session, session.begin():
            await crm_jobs.enqueue(
                session,
                COMMENT,
                {"user_id": context.user_id, "entity": entity, "entity_id": entity_id},
                dedup_key=f"comment:{origin}",
            )
        self.wake()

    @staticmethod
    def _existing(found: dict[str, Any]) -> tuple[str, int | None, bool]:
        """A lead an earlier attempt made (its answer lost), else one found by phone, lead before contact."""
        earlier = found.get("earlier")
        if isinstance(earlier, list) and earlier:
            return "lead", int(earlier[0]["ID"]), True
        by_phone = found.get("phone")
        if isinstance(by_phone, dict):
            for key, entity in (("LEAD", "lead"), ("CONTACT", "contact")):
                ids = by_phone.get(key) or []
                if ids:
                    return entity, int(min(ids)), False
        return "lead", None, False

    async def _post_comment(self, job: CrmJob) -> None:
        async with self._db.sessions() as session:
            # By user id, not client id: the client may have been merged since the job was queued.
            client_ids = await find_client_ids(session, str(job.payload["user_id"]))
            lines = await recent_dialog(session, client_ids[0]) if client_ids else []
        comment = crm_texts.dialog_comment(lines)
        if comment is None:
            raise JobSkipped
        fields = {
            "ENTITY_ID": int(job.payload["entity_id"]),
            "ENTITY_TYPE": str(job.payload["entity"]),
            "COMMENT": comment,
        }
        await self._client.call("crm.timeline.comment.add", {"fields": fields})

    # --- entities Bitrix24 told us about -------------------------------------------------------------

    async def _fetch(self, jobs: list[CrmJob]) -> None:
        commands = {
            f"j{job.id}": (FETCH_METHODS[str(job.payload["entity"])], {"id": int(job.payload["id"])})
            for job in jobs
        }
        try:
            results = await self._client.batch(commands)
        except Bitrix24Error as exc:
            for job in jobs:
                await self._finish(job, str(exc), retry=True)
            return
        for job in jobs:
            result = results[f"j{job.id}"]
            if isinstance(result, Bitrix24Error):
                # Bitrix24 answers a deleted entity with "Not found": retrying will not bring it back.
                gone = result.code == "NOT_FOUND" or result.description.lower() == "not found"
                await self._finish(job, str(result), retry=not gone)
                continue
            await self._attempt(job, functools.partial(self._record_entity, fields=result))

    async def _record_entity(self, job: CrmJob, *, fields: Any) -> None:
        if not isinstance(fields, dict) or "ID" not in fields:
            raise Bitrix24Error("BAD_ANSWER", "entity without ID")
        entity = str(job.payload["entity"])
        owner_ids = (
            mapping.deal_owner_ids(fields)
            if entity == "deal"
            else [mapping.crm_id("lead", int(fields["ID"]))]
        )
        async with self._db.sessions() as session:
            owner = await owner_of_crm_ids(session, owner_ids)
        if owner is None:
            raise JobSkipped  # a CRM record LeadTrail's assistant never talked to
        if entity == "deal":
            await self._write(mapping.deal_event(fields, owner.user_id, owner.channel))
        else:
            await self._write(mapping.lead_event(fields, owner.user_id, owner.channel))


async def prepare_crm_worker(settings: Settings, db: Database, writer: EventWriter) -> CrmWorker:
    """The worker ``leadtrail run`` prepares when ``[bitrix24] webhook_url`` is set; the leader starts it
    (bot.runtime.leadership), so several processes on one PostgreSQL never call Bitrix24 twice for one job."""
    config = settings.bitrix24
    assert config.webhook_url is not None
    client = Bitrix24Client(
        config.webhook_url.get_secret_value(),
        requests_per_second=config.requests_per_second,
        timeout_seconds=config.timeout_seconds,
    )
    worker = CrmWorker(config, db, writer, client)
    await worker.prepare()
    return worker
