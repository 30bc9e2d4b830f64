"""``POST /v1/traces``: LeadTrail as an OTLP/HTTP traces endpoint, so an assistant instrumented with
OpenTelemetry (openai-v2, OpenLLMetry, OpenLIT) exports its model calls straight here.

Answers per the OTLP specification, in the request's encoding: 200 with an ``ExportTraceServiceResponse``
(with ``partial_success`` when spans were rejected; the exporter must not retry those); failures with a
``google.rpc.Status``: 400 (undecodable: never retried), 401, 413, 415, 429 and 503 with ``Retry-After``
(retried). The same bearer tokens, rate limits and body limit as ``/v1/events``.
"""

from __future__ import annotations

import logging

from aiohttp import web
from google.protobuf import json_format
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from bot.ingestion.auth import IngestAuth
from bot.ingestion.otlp_decode import JSON, MEDIA_TYPES, decode_request, spans_of
from bot.ingestion.pipeline import undecodable
from bot.ingestion.trace_wait import SOURCE, TraceWaiter
from storage.database import StorageUnavailable
from storage.writer import EventWriter

logger = logging.getLogger(__name__)

TRACES_PATH = "/v1/traces"
# What aiohttp inflates while it reads a body (gzip is the one OTLP names; br and zstd need their
# libraries, else aiohttp answers 400 itself). Any other coding would reach the decoder still encoded.
DECODED_WHILE_READ = frozenset({"", "identity", "gzip", "deflate", "br", "zstd"})


def _encoded(media_type: str, message: ExportTraceServiceResponse | status_pb2.Status) -> bytes:
    if media_type == JSON:
        return json_format.MessageToJson(message, indent=None).encode()
    return message.SerializeToString()


class TracesEndpoint:
    def __init__(
        self,
        waiter: TraceWaiter,
        writer: EventWriter,
        auth: IngestAuth,
        *,
        max_body_bytes: int,
        retry_after_seconds: int,
    ) -> None:
        self._waiter = waiter
        self._writer = writer
        self._auth = auth
        self._max_body = max_body_bytes
        self._retry_after = str(retry_after_seconds)

    @staticmethod
    def _failure(
        request: web.Request, status: int, code: int, message: str, retry_after: str | None = None
    ) -> web.Response:
        media = request.content_type if request.content_type in MEDIA_TYPES else JSON
        headers = {"Retry-After": retry_after} if retry_after else None
        body = _encoded(media, status_pb2.Status(code=code, message=message))
        return web.Response(status=status, body=body, content_type=media, headers=headers)

    async def post(self, request: web.Request) -> web.Response:
        source = self._auth.identify(request.headers.get("Authorization"))
        if source is None:
            message = "missing or unknown token: send 'Authorization: Bearer <token>'"
            return self._failure(request, 401, code_pb2.UNAUTHENTICATED, message)
        if wait := self._auth.retry_after(source):
            message = f"over the rate limit of source {source.name!r}"
            return self._failure(request, 429, code_pb2.RESOURCE_EXHAUSTED, message, str(wait))
        media = request.content_type
        if media not in MEDIA_TYPES:
            message = f"unsupported Content-Type {media!r}: use application/x-protobuf or application/json"
            return self._failure(request, 415, code_pb2.INVALID_ARGUMENT, message)
        encoding = request.headers.get("Content-Encoding", "")
        if encoding.strip().lower() not in DECODED_WHILE_READ:
            message = f"unsupported Content-Encoding {encoding!r}: use gzip or none"
            return self._failure(request, 415, code_pb2.INVALID_ARGUMENT, message)
        # The limit holds for the inflated body too: aiohttp counts what it has decompressed.
        too_large = f"body is over {self._max_body} bytes, counted decompressed (ingest.max_body_bytes)"
        if request.content_length is not None and request.content_length > self._max_body:
            return self._failure(request, 413, code_pb2.RESOURCE_EXHAUSTED, too_large)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._failure(request, 413, code_pb2.RESOURCE_EXHAUSTED, too_large)
        except web.RequestPayloadError as exc:  # e.g. "gzip" that is not gzip
            return self._failure(request, 400, code_pb2.INVALID_ARGUMENT, f"the body cannot be read: {exc}")
        try:
            try:
                decoded = decode_request(body, media)
            except ValueError as exc:
                await self._writer.write([], [undecodable(SOURCE, body, str(exc))])
                return self._failure(request, 400, code_pb2.INVALID_ARGUMENT, str(exc))
            intake = await self._waiter.receive(list(spans_of(decoded)), source.channels)
        except StorageUnavailable:
            message = "storage is unavailable, retry later"
            return self._failure(request, 503, code_pb2.UNAVAILABLE, message, self._retry_after)
        answer = ExportTraceServiceResponse()
        if intake.rejected:
            logger.warning("otlp: rejected %d span(s) of a request", intake.rejected)
            answer.partial_success.rejected_spans = intake.rejected
            answer.partial_success.error_message = intake.message()
        return web.Response(body=_encoded(media, answer), content_type=media)
