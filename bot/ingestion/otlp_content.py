"""A model call's texts from its span: what the client asked (``prompt``) and what the model answered.

Instrumentations record message contents three ways, tried newest first: the GenAI conventions'
``gen_ai.input.messages`` / ``gen_ai.output.messages`` (a JSON string on the span, as the Python SDK
writes them, or structured, also on a span event); the older ``gen_ai.content.prompt`` /
``gen_ai.content.completion`` span events with ``gen_ai.prompt`` / ``gen_ai.completion``; and
OpenLLMetry's flattened ``gen_ai.prompt.<i>.content``. The prompt is the last user message (what the
client just said, not the system prompt or the history), the answer the first output message. Both
are personal data and fall under retention like any text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bot.ingestion.otlp_decode import SpanRecord

Message = dict[str, Any]
_CONTENT_KEYS = ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.prompt", "gen_ai.completion")


def message_texts(record: SpanRecord) -> tuple[str | None, str | None]:
    """(prompt, assistant_response); None where the span recorded no content (the default: contents are
    captured only when the assistant's instrumentation is told to)."""
    if not record.events and not any(key.startswith(_CONTENT_KEYS) for key in record.attributes):
        return None, None  # the default: instrumentations record no contents unless told to
    inputs, outputs = _messages(record)
    asked = next((message for message in reversed(inputs) if message.get("role") == "user"), None)
    if asked is None and inputs:
        asked = inputs[-1]
    return (_text(asked) if asked else None), (_text(outputs[0]) if outputs else None)


def _messages(record: SpanRecord) -> tuple[list[Message], list[Message]]:
    sources = [record.attributes, *(event.attributes for event in record.events)]
    inputs = _found(sources, "gen_ai.input.messages") or _found(sources, "gen_ai.prompt")
    outputs = _found(sources, "gen_ai.output.messages") or _found(sources, "gen_ai.completion")
    return (
        inputs or _indexed(record.attributes, "gen_ai.prompt."),
        outputs or _indexed(record.attributes, "gen_ai.completion."),
    )


def _found(sources: list[dict[str, Any]], key: str) -> list[Message]:
    for attributes in sources:
        if messages := _as_messages(attributes.get(key)):
            return messages
    return []


def _as_messages(value: Any) -> list[Message]:
    """JSON text, a list of messages, one message, or plain text (old instrumentations wrote Python's
    repr of a list, which is kept as the text it is)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return [{"content": value}] if value.strip() else []
    if isinstance(value, dict):
        value = [value]
    if isinstance(value, list):
        return [item if isinstance(item, dict) else {"content": item} for item in value if item is not None]
    return []


def _indexed(attributes: Mapping[str, Any], prefix: str) -> list[Message]:
    """Messages rebuilt from ``<prefix><i>.role`` and ``<prefix><i>.content``."""
    by_index: dict[int, Message] = {}
    for key, value in attributes.items():
        if key.startswith(prefix):
            index, _, name = key[len(prefix) :].partition(".")
            if index.isdigit() and name in ("role", "content"):
                by_index.setdefault(int(index), {})[name] = value
    return [by_index[index] for index in sorted(by_index)]


def _text(message: Message) -> str | None:
    """The text parts of a message, GenAI shape (``parts``) or OpenAI shape (``content``)."""
    pieces: list[str] = []
    parts = message.get("parts")
    if isinstance(parts, list):
        pieces += [
            str(part["content"])
            for part in parts
            if isinstance(part, dict) and part.get("type") == "text" and part.get("content") is not None
        ]
    content = message.get("content")
    if content is None and isinstance(message.get("message"), dict):  # a gen_ai.choice body
        content = message["message"].get("content")
    if isinstance(content, str):
        pieces.append(content)
    elif isinstance(content, list):
        pieces += [
            part if isinstance(part, str) else part["text"]
            for part in content
            if isinstance(part, str) or (isinstance(part, dict) and isinstance(part.get("text"), str))
        ]
    return "\n".join(piece for piece in pieces if piece) or None
