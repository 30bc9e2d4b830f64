"""A local fake YCLIENTS, on 127.0.0.1: the salon's records and payments in memory, the REST API that the
reconciliation reads (``GET /api/v1/records/{company_id}``: ``Bearer <partner>, User <user>``,
``changed_after``/``changed_before`` in the salon's local time, pages, ``with_deleted``, at most 5
requests in any second, 429 beyond), and webhooks shaped as YCLIENTS sends them (offsets like
``+0300``, empty objects as ``[]``, ids as numbers) for the tests to deliver.
"""

from __future__ import annotations

import copy
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from tests.local_server import serving

PARTNER_TOKEN, USER_TOKEN = "fake-partner-token", "fake-user-token"
SALON_ZONE = ZoneInfo("Europe/Moscow")


def yc_time(moment: datetime) -> str:
    """``2020-10-29T13:34:26+0300``: how YCLIENTS writes create_date and last_change_date."""
    return moment.astimezone(SALON_ZONE).strftime("%Y-%m-%dT%H:%M:%S%z")


def yc_datetime(moment: datetime) -> str:
    """``2020-11-21T16:00:00+03:00``: how it writes the appointment's ``datetime``."""
    return moment.astimezone(SALON_ZONE).isoformat(timespec="seconds")


@dataclass
class FakeYclients:
    company_id: int = 555001
    rate_per_second: float = 5.0
    records: dict[int, dict[str, Any]] = field(default_factory=dict)
    requests: list[dict[str, str]] = field(default_factory=list)
    next_id: int = 900_000_000
    too_fast: int = 0  # requests answered 429
    port: int = 0
    _serving: AsyncExitStack = field(default_factory=AsyncExitStack)
    _recent: list[float] = field(default_factory=list)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    # --- the salon's side ------------------------------------------------------------------------------

    def book(
        self,
        *,
        client_id: int | None,
        phone: str | None,
        name: str,
        at: datetime,
        created: datetime,
        title: str = "Мужская стрижка",
        cost: float = 1500.0,
        staff: str = "Артур",
    ) -> dict[str, Any]:
        """A new record, as the salon's administrator (or the assistant through the API) makes it."""
        self.next_id += 1
        client: Any = [] if client_id is None else {"id": client_id, "name": name, "phone": phone or ""}
        record = {
            "id": self.next_id,
            "company_id": self.company_id,
            "services": [{"id": 1, "title": title, "cost": cost, "cost_to_pay": cost, "amount": 1}],
            "staff": {"id": 7, "name": staff, "position": {"id": 1, "title": "Барбер"}},
            "client": client,
            "date": at.astimezone(SALON_ZONE).strftime("%Y-%m-%d %H:%M:%S"),
            "datetime": yc_datetime(at),
            "create_date": yc_time(created),
            "last_change_date": yc_time(created),
            "attendance": 0,
            "visit_attendance": 0,
            "confirmed": 0,
            "deleted": False,
            "paid_full": 0,
            "online": True,
            "visit_id": self.next_id + 5_000_000,
            "comer": None,
        }
        self.records[record["id"]] = record
        return copy.deepcopy(record)

    def change(self, record_id: int, at: datetime, **fields: Any) -> dict[str, Any]:
        """The record after a change made at ``at`` (attendance, datetime, deleted…)."""
        record = self.records[record_id]
        record.update(fields)
        if "attendance" in fields:
            record["visit_attendance"] = fields["attendance"]
        record["last_change_date"] = yc_time(at)
        return copy.deepcopy(record)

    def payment(self, record_id: int, amount: float, at: datetime, operation_id: int) -> dict[str, Any]:
        record = self.records[record_id]
        client = record["client"]
        return {
            "id": operation_id,
            "document_id": operation_id + 1,
            "expense": {"id": 5, "title": "Оказание услуг"},
            "date": yc_time(at),
            "amount": amount,
            "comment": "",
            "master": [],
            "supplier": [],
            "account": {"id": 17433, "title": "Основная касса"},
            "client": {"id": client["id"], "name": client["name"], "phone": client["phone"]}
            if client
            else [],
            "record_id": record_id,
            "visit_id": record["visit_id"],
            "sold_item_id": 0,
            "sold_item_type": "service",
        }

    def webhook(self, resource: str, status: str, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "company_id": self.company_id,
            "resource": resource,
            "resource_id": data["id"],
            "status": status,
            "data": data,
        }

    # --- the REST API ----------------------------------------------------------------------------------

    async def _records(self, request: web.Request) -> web.Response:
        self.requests.append({"path": request.path, **request.query})
        now = time.monotonic()
        self._recent = [moment for moment in self._recent if now - moment < 1.0]
        if len(self._recent) >= self.rate_per_second:  # 5 requests in any second at most
            self.too_fast += 1
            return web.json_response({"success": False, "meta": {"message": "Too Many Requests"}}, status=429)
        self._recent.append(now)
        if request.headers.get("Authorization") != f"Bearer {PARTNER_TOKEN}, User {USER_TOKEN}":
            body = {"success": False, "data": None, "meta": {"message": "Необходима авторизация"}}
            return web.json_response(body, status=401)
        if int(request.match_info["company_id"]) != self.company_id:
            return web.json_response(
                {"success": False, "meta": {"message": "Компания не найдена"}}, status=404
            )
        after = datetime.fromisoformat(request.query["changed_after"]).replace(tzinfo=SALON_ZONE)
        before = datetime.fromisoformat(request.query["changed_before"]).replace(tzinfo=SALON_ZONE)
        with_deleted = request.query.get("with_deleted") == "1"
        matching = [
            record
            for record in self.records.values()
            if after <= datetime.fromisoformat(record["last_change_date"]) < before + timedelta(seconds=1)
            and (with_deleted or not record["deleted"])
        ]
        page, count = int(request.query.get("page", "1")), int(request.query.get("count", "50"))
        shown = matching[(page - 1) * count : page * count]
        return web.json_response(
            {"success": True, "data": shown, "meta": {"page": page, "total_count": len(matching)}}
        )

    async def __aenter__(self) -> FakeYclients:
        app = web.Application()
        app.router.add_get("/api/v1/records/{company_id}", self._records)
        self.port = await self._serving.enter_async_context(serving(app))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._serving.aclose()
