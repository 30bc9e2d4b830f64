"""A local fake Bitrix24 portal: the REST protocol over an inbound webhook, on 127.0.0.1.

Speaks ``POST /rest/<user>/<secret>/<method>.json`` (JSON or form body), answers ``result``/``time`` or
``error``/``error_description``, keeps leads, contacts, deals and timeline comments in memory, and enforces
a leaky bucket (HTTP 503 ``QUERY_LIMIT_EXCEEDED`` when called faster than allowed). Tests can make the next
calls fail, or apply a call and then drop its answer (the client never learns it succeeded).
"""

from __future__ import annotations

import re
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from tests.local_server import serving

USER, SECRET = "1", "fake-webhook-secret"


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    status: int


@dataclass
class FakeBitrix24:
    rate: float = 2.0
    capacity: float = 2.0
    calls: list[Call] = field(default_factory=list)
    leads: dict[int, dict[str, Any]] = field(default_factory=dict)
    contacts: dict[int, dict[str, Any]] = field(default_factory=dict)
    deals: dict[int, dict[str, Any]] = field(default_factory=dict)
    comments: list[dict[str, Any]] = field(default_factory=list)
    _fail_next: int = 0
    _drop_next: int = 0
    _drop_method: str | None = None
    _level: float = 0.0
    _level_at: float = field(default_factory=time.monotonic)
    next_id: int = 100
    _serving: AsyncExitStack = field(default_factory=AsyncExitStack)
    port: int = 0

    # --- test controls ---------------------------------------------------------------------------------

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/rest/{USER}/{SECRET}/"

    def fail_next(self, count: int) -> None:
        """The next ``count`` calls answer 500 without doing anything."""
        self._fail_next = count

    def drop_next_answer(self, count: int, method: str | None = None) -> None:
        """The next ``count`` calls (of ``method`` only, if given) are applied, then the connection is
        closed without an answer."""
        self._drop_next = count
        self._drop_method = method

    def methods(self, status: int | None = 200) -> list[str]:
        return [call.method for call in self.calls if status is None or call.status == status]

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def add_lead(self, **fields: Any) -> int:
        lead_id = self.new_id()
        self.leads[lead_id] = {"ID": str(lead_id), "STATUS_ID": "NEW", "STATUS_SEMANTIC_ID": "P", **fields}
        return lead_id

    def add_contact(self, **fields: Any) -> int:
        contact_id = self.new_id()
        self.contacts[contact_id] = {"ID": str(contact_id), **fields}
        return contact_id

    def add_deal(self, **fields: Any) -> int:
        deal_id = self.new_id()
        self.deals[deal_id] = {"ID": str(deal_id), "STAGE_ID": "NEW", "STAGE_SEMANTIC_ID": "P", **fields}
        return deal_id

    # --- server ----------------------------------------------------------------------------------------

    async def __aenter__(self) -> FakeBitrix24:
        app = web.Application()
        app.router.add_post("/rest/{user}/{secret}/{method}", self._handle)
        self.port = await self._serving.enter_async_context(serving(app))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._serving.aclose()

    def _take_token(self) -> bool:
        now = time.monotonic()
        self._level = max(0.0, self._level - (now - self._level_at) * self.rate)
        self._level_at = now
        if self._level + 1 > self.capacity + 1e-9:
            return False
        self._level += 1
        return True

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        started = time.time()
        method = request.match_info["method"].removesuffix(".json")
        params = await _params(request)
        if (request.match_info["user"], request.match_info["secret"]) != (USER, SECRET):
            return self._answer(method, params, 401, {"error": "INVALID_CREDENTIALS"}, started)
        if not self._take_token():
            body = {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}
            return self._answer(method, params, 503, body, started)
        if self._fail_next:
            self._fail_next -= 1
            body = {"error": "INTERNAL_SERVER_ERROR", "error_description": "Internal server error"}
            return self._answer(method, params, 500, body, started)
        status, body = self._dispatch(method, params)
        if self._drop_next and self._drop_method in (None, method):
            self._drop_next -= 1
            self.calls.append(Call(method, params, -1))
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        return self._answer(method, params, status, body, started)

    def _answer(
        self, method: str, params: dict[str, Any], status: int, body: dict[str, Any], started: float
    ) -> web.Response:
        self.calls.append(Call(method, params, status))
        finish = time.time()
        body["time"] = {"start": started, "finish": finish, "duration": finish - started}
        return web.json_response(body, status=status)

    # --- methods ---------------------------------------------------------------------------------------

    def _dispatch(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return 404, {"error": "ERROR_METHOD_NOT_FOUND", "error_description": "Method not found!"}
        try:
            return 200, {"result": handler(params)}
        except LookupError:
            return 400, {"error": "NOT_FOUND", "error_description": "Not found"}
        except (ValueError, TypeError) as exc:
            return 400, {"error": "INVALID_ARG_VALUE", "error_description": str(exc)}

    def _m_batch(self, params: dict[str, Any]) -> dict[str, Any]:
        results: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        for key, command in dict(params.get("cmd") or {}).items():
            name, _, query = str(command).partition("?")
            status, body = self._dispatch(name, _nest(parse_qsl(query, keep_blank_values=True)))
            self.calls.append(Call(f"batch:{name}", _nest(parse_qsl(query)), status))
            if status == 200:
                results[key] = body["result"]
            else:
                errors[key] = body
        return {
            "result": results or [],
            "result_error": errors or [],
            "result_total": [],
            "result_next": [],
            "result_time": {},
        }

    def _m_crm_lead_add(self, params: dict[str, Any]) -> int:
        fields = dict(params["fields"])
        if not fields.get("TITLE"):
            raise ValueError("TITLE is required")
        return self.add_lead(**fields)

    def _m_crm_lead_get(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.leads[int(params["id"])]

    def _m_crm_deal_get(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.deals[int(params["id"])]

    def _m_crm_lead_list(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        wanted = dict(params.get("filter") or {})
        select = list(params.get("select") or [])
        found = [
            lead
            for lead in self.leads.values()
            if all(str(lead.get(key)) == str(value) for key, value in wanted.items())
        ]
        return [{key: lead.get(key) for key in select} if select else lead for lead in found]

    def _m_crm_duplicate_findbycomm(self, params: dict[str, Any]) -> dict[str, list[int]] | list[Any]:
        if params.get("type") != "PHONE":
            raise ValueError("only PHONE in this fake")
        wanted = {_digits(value) for value in params.get("values") or []}
        found: dict[str, list[int]] = {}
        for kind, entities in (("LEAD", self.leads), ("CONTACT", self.contacts)):
            ids = [
                int(entity_id)
                for entity_id, entity in entities.items()
                if any(_digits(phone["VALUE"]) in wanted for phone in entity.get("PHONE") or [])
            ]
            if ids:
                found[kind] = ids
        return found or []  # PHP's empty array, as Bitrix24 answers

    def _m_crm_timeline_comment_add(self, params: dict[str, Any]) -> int:
        fields = params["fields"]
        entity_type, entity_id = str(fields["ENTITY_TYPE"]).lower(), int(fields["ENTITY_ID"])
        store = {"lead": self.leads, "contact": self.contacts, "deal": self.deals}[entity_type]
        if entity_id not in store:
            raise LookupError(entity_id)
        comment_id = self.new_id()
        self.comments.append({"ID": comment_id, **fields})
        return comment_id


def _digits(value: Any) -> str:
    """Bitrix24 matches phones whatever their punctuation, and a Russian 8… as +7…."""
    digits = re.sub(r"\D", "", str(value))
    return "7" + digits[1:] if len(digits) == 11 and digits.startswith("8") else digits


def _nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``a[b][0]=x`` pairs into nested dicts; dicts keyed 0..n-1 become lists, as PHP reads them."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _listify(root)


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    items = {key: _listify(value) for key, value in node.items()}
    if items and all(key.isdigit() for key in items) and sorted(map(int, items)) == list(range(len(items))):
        return [items[str(index)] for index in range(len(items))]
    return items


async def _params(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        body = await request.json()
        return body if isinstance(body, dict) else {}
    form = await request.post()
    return _nest([(key, str(value)) for key, value in form.items()])
