"""The demo barbershop's YCLIENTS: its records and payments, and the webhooks YCLIENTS would send about
them, shaped as the real ones are (``create_date`` with ``+0300``, ``attendance``, ``services`` with
``cost_to_pay``, the client card with the phone as YCLIENTS keeps it). The demo delivers them to
LeadTrail's ``POST /v1/yclients/{token}``, as a salon's YCLIENTS would."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

# The two points of the barbershop, one YCLIENTS company each.
COMPANIES = {"Баумана": 555001, "Ямашева": 555002}
MASTERS = ("Артур", "Ренат", "Дамир", "Олег")
RECORD, FINANCES = "record", "finances_operation"
CAME, NO_SHOW = 1, -1


@dataclass(frozen=True, slots=True)
class Webhook:
    """One webhook body and when YCLIENTS sends it."""

    at: datetime
    body: dict[str, Any]


def _stamp(moment: datetime, zone: tzinfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%dT%H:%M:%S%z")


@dataclass
class DemoYclients:
    zone: tzinfo
    records: dict[int, dict[str, Any]] = field(default_factory=dict)
    next_record: int = 0
    next_operation: int = 0

    def _hook(self, at: datetime, resource: str, status: str, data: dict[str, Any]) -> Webhook:
        body = {
            "company_id": data["company_id"],
            "resource": resource,
            "resource_id": data["id"],
            "status": status,
            "data": copy.deepcopy(data),
        }
        return Webhook(at, body)

    def book(
        self,
        *,
        at: datetime,
        location: str,
        client_id: int,
        name: str,
        phone: str,
        service: str,
        price: float,
        appointment: datetime,
        master: str,
        record_id: int | None = None,
    ) -> Webhook:
        """A record made at ``at`` (by an administrator, or with ``record_id`` by the assistant)."""
        online = record_id is not None  # the assistant books through the API
        if record_id is None:
            self.next_record += 1
            record_id = self.next_record
        record = {
            "id": record_id,
            "company_id": COMPANIES[location],
            "services": [{"id": 1, "title": service, "cost": price, "cost_to_pay": price, "amount": 1}],
            "staff": {
                "id": MASTERS.index(master) + 1,
                "name": master,
                "position": {"id": 1, "title": "Барбер"},
            },
            "client": {"id": client_id, "name": name, "phone": "+" + re.sub(r"\D", "", phone)},
            "date": appointment.astimezone(self.zone).strftime("%Y-%m-%d %H:%M:%S"),
            "datetime": appointment.astimezone(self.zone).isoformat(timespec="seconds"),
            "create_date": _stamp(at, self.zone),
            "last_change_date": _stamp(at, self.zone),
            "attendance": 0,
            "visit_attendance": 0,
            "confirmed": 0,
            "deleted": False,
            "online": online,
            "comer": None,
        }
        self.records[record_id] = record
        return self._hook(at, RECORD, "create", record)

    def _change(self, record_id: int, at: datetime, status: str, **fields: Any) -> Webhook:
        record = self.records[record_id]
        record.update(fields, last_change_date=_stamp(at, self.zone))
        return self._hook(at, RECORD, status, record)

    def attendance(self, record_id: int, at: datetime, value: int) -> Webhook:
        return self._change(record_id, at, "update", attendance=value, visit_attendance=value)

    def cancel(self, record_id: int, at: datetime) -> Webhook:
        return self._change(record_id, at, "delete", deleted=True)

    def pay(self, record_id: int, at: datetime, amount: float) -> Webhook:
        record = self.records[record_id]
        self.next_operation += 1
        operation = {
            "id": self.next_operation,
            "company_id": record["company_id"],
            "document_id": self.next_operation,
            "expense": {"id": 5, "title": "Оказание услуг"},
            "date": _stamp(at, self.zone),
            "amount": amount,
            "master": [],
            "supplier": [],
            "account": {"id": 1, "title": "Основная касса"},
            "client": {key: record["client"][key] for key in ("id", "name", "phone")},
            "record_id": record_id,
            "sold_item_type": "service",
        }
        return self._hook(at, FINANCES, "create", operation)
