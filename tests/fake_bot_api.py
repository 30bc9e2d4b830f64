"""A local fake of the Telegram Bot API HTTP server for tests.

Why: tests must exercise the real aiogram stack (HTTP session, form/multipart serialisation,
response validation, error mapping, dispatcher and long polling) without network access or a
real bot token. Point aiogram at it with::

    async with FakeBotAPI() as api:
        session = AiohttpSession(api=TelegramAPIServer.from_base(api.base_url))
        bot = Bot("123456:TEST", session=session)

aiogram builds ``{base}/bot{token}/{method}`` for API calls and ``{base}/file/bot{token}/{path}``
for downloads; both are served here. Every request is recorded as a :class:`Call`.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import mimetypes
import re
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Any, Self

from aiohttp import web

JSON = dict[str, Any]
ChatId = int | str

BOT_USERNAME = "leadtrail_test_bot"
BOT_FIRST_NAME = "LeadTrail Test"
DEFAULT_BOT_ID = 7_000_000_001

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64

# Telegram only pushes these to bots that explicitly ask for them in ``allowed_updates``.
_OPT_IN_UPDATE_TYPES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})

# String-typed parameters: aiogram sends strings raw (everything else as JSON), so these must
# never be JSON-decoded -- otherwise a message text "42" would turn into the int 42.
_STRING_PARAMS = frozenset(
    {
        "text",
        "caption",
        "data",
        "title",
        "description",
        "short_description",
        "name",
        "first_name",
        "last_name",
        "username",
        "url",
        "query",
        "question",
        "explanation",
        "message_text",
        "parse_mode",
        "action",
        "emoji",
        "payload",
        "currency",
        "language_code",
        "custom_title",
        "invite_link",
        "phone_number",
        "address",
        "vcard",
        "file_id",
        "callback_query_id",
        "inline_query_id",
        "inline_message_id",
        "business_connection_id",
        "message_effect_id",
        "shipping_query_id",
        "pre_checkout_query_id",
        "web_app_query_id",
        "custom_emoji_id",
        "secret_token",
        "photo",
        "document",
        "video",
        "audio",
        "voice",
        "animation",
        "sticker",
        "video_note",
        "thumbnail",
        "certificate",
    }
)

# Parameters that carry JSON objects/arrays even when a client sends a JSON body.
_JSON_PARAMS = frozenset(
    {
        "reply_markup",
        "media",
        "entities",
        "caption_entities",
        "commands",
        "scope",
        "allowed_updates",
        "reply_parameters",
        "link_preview_options",
        "results",
        "options",
    }
)

_DEFAULT_DESCRIPTIONS: dict[int, str] = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
    500: "Internal Server Error",
    502: "Bad Gateway",
}

_BLOCKABLE_PREFIXES = ("send", "copymessage", "forwardmessage", "editmessage")


@dataclass
class Call:
    """One recorded Bot API request, so tests can assert what the bot actually sent."""

    method: str
    params: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    filenames: dict[str, str] = field(default_factory=dict)
    status: int = 200
    token: str = ""

    @property
    def ok(self) -> bool:
        """False when the fake answered with an error (injected fault, blocked chat, bad request)."""
        return self.status == HTTPStatus.OK

    def attachment(self, ref: str) -> bytes:
        """Resolve an ``attach://name`` reference (as used in ``photo`` or ``media``) to uploaded bytes."""
        return self.files[ref.removeprefix("attach://")]


@dataclass
class _Fault:
    status: int
    description: str
    parameters: JSON | None
    remaining: int
    chat_id: ChatId | None = None  # only calls to this chat fail; None: any call of the method


class TelegramError(Exception):
    """Raised inside method handlers to answer with Telegram's error envelope."""

    def __init__(self, status: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def payload(self) -> JSON:
        body: JSON = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def _bad_request(detail: str) -> TelegramError:
    return TelegramError(400, f"Bad Request: {detail}")


def _decode_param(key: str, value: Any) -> Any:
    """Turn form strings back into typed values the way the real server interprets them."""
    if not isinstance(value, str) or key in _STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _update_type(update: JSON) -> str:
    return next((key for key in update if key != "update_id"), "")


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


_HTML_TAGS = frozenset(
    {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "code",
        "pre",
        "blockquote",
        "tg-emoji",
    }
)
_HTML_TOKEN = re.compile(
    r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s[^<>]*)?)>|&(?:#\d+|#x[0-9a-fA-F]+|lt|gt|amp|quot);|[<>&]"
)


def _check_html(text: str) -> None:
    """Telegram's strictness: only its tags, balanced; every other <, > and & must be an entity."""
    open_tags: list[str] = []
    for token in _HTML_TOKEN.finditer(text):
        if token.group(0) in "<>&":
            raise _bad_request(
                f"can't parse entities: unexpected {token.group(0)!r} at byte offset {token.start()}"
            )
        name = token.group(2)
        if name is None:
            continue
        name = name.lower()
        if name not in _HTML_TAGS:
            raise _bad_request(f'can\'t parse entities: unsupported start tag "{name}" at {token.start()}')
        if token.group(1):
            if not open_tags or open_tags.pop() != name:
                raise _bad_request(f'can\'t parse entities: unmatched end tag "{name}" at {token.start()}')
        else:
            open_tags.append(name)
    if open_tags:
        raise _bad_request(
            f"can't parse entities: can't find end tag corresponding to start tag \"{open_tags[-1]}\""
        )


def _visible_text(text: str, parse_mode: Any) -> str:
    """What Telegram stores after parsing markup (HTML tags do not count); invalid HTML is a 400."""
    if isinstance(parse_mode, str) and parse_mode.upper() == "HTML":
        _check_html(text)
        return html.unescape(re.sub(r"<[^>]*>", "", text))
    return text


def _inline_markup(markup: Any) -> JSON | None:
    """Telegram echoes only inline keyboards back in the sent Message."""
    if isinstance(markup, dict) and "inline_keyboard" in markup:
        return markup
    return None


async def _parse_request(request: web.Request) -> tuple[dict[str, Any], dict[str, bytes], dict[str, str]]:
    """Read query string + JSON / urlencoded / multipart body into (params, files, filenames)."""
    raw: dict[str, Any] = dict(request.query)
    files: dict[str, bytes] = {}
    filenames: dict[str, str] = {}
    if request.content_type == "application/json" and request.can_read_body:
        body = await request.json()
        if isinstance(body, dict):
            raw.update(body)
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                files[key] = value.file.read()
                filenames[key] = value.filename
            elif isinstance(value, bytes | bytearray):
                raw[key] = bytes(value).decode()
            else:
                raw[key] = value
    params = {key: _decode_param(key, value) for key, value in raw.items()}
    return params, files, filenames


Handler = Callable[[Call], Awaitable[Any]]


class FakeBotAPI:
    """In-process Telegram Bot API server: records calls, serves updates, injects faults."""

    def __init__(self, *, host: str = "127.0.0.1", max_poll_timeout: float = 1.0) -> None:
        self.host = host
        self.max_poll_timeout = max_poll_timeout
        self.calls: list[Call] = []
        self.dropped_updates: list[JSON] = []
        self.blocked_chats: set[ChatId] = set()
        self.commands: dict[tuple[str, str], list[JSON]] = {}
        self._queue: list[JSON] = []
        self._messages: dict[tuple[int, int], JSON] = {}
        self._chats: dict[int, JSON] = {}
        self._named_chats: dict[str, int] = {}
        self._uploads: dict[str, tuple[bytes, JSON]] = {}
        self._faults: dict[str, list[_Fault]] = {}
        self._hangs: dict[str, list[tuple[float, ChatId | None]]] = {}
        self._allowed_updates: set[str] | None = None
        self._update_ids = itertools.count(1)
        self._last_update_id = 0
        self._message_ids = itertools.count(1)
        self._file_ids = itertools.count(1)
        self._callback_ids = itertools.count(4_000_000_000_000_000_001)
        self._media_group_ids = itertools.count(13_000_000_000_000_001)
        self._token = f"{DEFAULT_BOT_ID}:fake"
        self._updates_changed = asyncio.Event()
        self._calls_changed = asyncio.Event()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        self._handlers: dict[str, tuple[str, Handler]] = {
            name.lower(): (name, handler)
            for name, handler in {
                "getMe": self._get_me,
                "getUpdates": self._get_updates,
                "deleteWebhook": self._true,
                "setMyCommands": self._set_my_commands,
                "getMyCommands": self._get_my_commands,
                "deleteMyCommands": self._delete_my_commands,
                "sendMessage": self._send_message,
                "editMessageText": self._edit_message_text,
                "editMessageReplyMarkup": self._edit_message_reply_markup,
                "answerCallbackQuery": self._true,
                "sendPhoto": self._send_photo,
                "sendDocument": self._send_document,
                "sendMediaGroup": self._send_media_group,
                "sendChatAction": self._true,
                "deleteMessage": self._delete_message,
                "getChat": self._get_chat,
                "getFile": self._get_file,
                "close": self._true,
                "logOut": self._true,
            }.items()
        }

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> Self:
        """Bind an ephemeral port on ``host`` so parallel test runs never collide."""
        if self._runner is not None:
            raise RuntimeError("FakeBotAPI is already running")
        self._closing = False
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, self.host, 0).start()
        host, port = runner.addresses[0][:2]
        self._runner = runner
        self._base_url = f"http://{host}:{port}"
        return self

    async def stop(self) -> None:
        """Release pending long polls first so shutdown does not wait for them."""
        self._closing = True
        self._updates_changed.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """Root URL for ``TelegramAPIServer.from_base``; only valid while started."""
        if self._base_url is None:
            raise RuntimeError("FakeBotAPI is not started")
        return self._base_url

    # ------------------------------------------------------------------ call inspection

    def calls_of(self, method: str) -> list[Call]:
        """Recorded calls of one method (case-insensitive, like Telegram), in order."""
        wanted = method.lower()
        return [call for call in self.calls if call.method.lower() == wanted]

    async def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:  # noqa: ASYNC109
        """Wait until ``count`` calls of ``method`` were recorded; returns all recorded so far."""
        try:
            async with asyncio.timeout(timeout):
                while len(self.calls_of(method)) < count:
                    self._calls_changed.clear()
                    await self._calls_changed.wait()
        except TimeoutError:
            seen = [call.method for call in self.calls if call.method.lower() != "getupdates"]
            raise TimeoutError(
                f"expected {count} {method} call(s) within {timeout}s, "
                f"got {len(self.calls_of(method))}; other calls: {seen}"
            ) from None
        return self.calls_of(method)

    async def wait_confirmed(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until the bot confirmed (via getUpdates offset) every queued update."""
        try:
            async with asyncio.timeout(timeout):
                while self._queue:
                    self._calls_changed.clear()
                    await self._calls_changed.wait()
        except TimeoutError:
            raise TimeoutError(
                f"{len(self._queue)} update(s) still unconfirmed after {timeout}s: {self._queue}"
            ) from None

    def get_message(self, chat_id: ChatId, message_id: int) -> JSON | None:
        """Current server-side state of a message (after edits), or None if unknown/deleted."""
        return self._messages.get((self._chat_key(chat_id), message_id))

    @property
    def pending_updates(self) -> list[JSON]:
        """Updates not yet confirmed by a getUpdates offset."""
        return list(self._queue)

    # ------------------------------------------------------------------ fault injection

    def fail_next(
        self,
        method: str,
        status: int = 429,
        description: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
        chat_id: ChatId | None = None,
    ) -> None:
        """Make the next ``times`` calls of ``method`` (``"*"`` = any method) fail like Telegram does;
        with ``chat_id``, only calls to that chat (whatever order a client sends in)."""
        parameters: JSON | None = None
        if status == HTTPStatus.TOO_MANY_REQUESTS and retry_after is None:
            retry_after = 1
        if retry_after is not None:
            parameters = {"retry_after": retry_after}
        if description is None:
            if status == HTTPStatus.TOO_MANY_REQUESTS:
                description = f"Too Many Requests: retry after {retry_after}"
            else:
                description = _DEFAULT_DESCRIPTIONS.get(status) or HTTPStatus(status).phrase
        fault = _Fault(status, description, parameters, remaining=times, chat_id=chat_id)
        self._faults.setdefault(method.lower(), []).append(fault)

    def hang_next(self, method: str, seconds: float, times: int = 1, chat_id: ChatId | None = None) -> None:
        """Hold the next ``times`` calls of ``method`` for ``seconds``, then answer 504 without doing them.

        Longer than the client's timeout, this is a Telegram that hangs: the client gives up, and the
        message must not count as sent.
        """
        self._hangs.setdefault(method.lower(), []).extend([(seconds, chat_id)] * times)

    async def _hang(self, call: Call) -> None:
        queue = self._hangs.get(call.method.lower(), [])
        for hang in queue:
            if hang[1] is None or hang[1] == call.params.get("chat_id"):
                queue.remove(hang)
                await asyncio.sleep(hang[0])
                raise TelegramError(504, "Gateway Timeout")

    def block_chat(self, chat_id: ChatId) -> None:
        """Simulate a user who blocked the bot: sends/edits to that chat answer 403."""
        self.blocked_chats.add(chat_id)

    def unblock_chat(self, chat_id: ChatId) -> None:
        """Undo :meth:`block_chat`, e.g. to test that a user who unblocked the bot gets messages again."""
        self.blocked_chats.discard(chat_id)

    # ------------------------------------------------------------------ update injection

    def push_update(self, update: JSON) -> JSON:
        """Queue a raw Update for getUpdates; assigns an increasing ``update_id`` if missing."""
        update = dict(update)
        if "update_id" not in update:
            update["update_id"] = self._next_update_id()
        self._last_update_id = max(self._last_update_id, int(update["update_id"]))
        for key in ("message", "edited_message", "channel_post", "edited_channel_post"):
            if isinstance(update.get(key), dict):
                self._store(update[key])
        callback = update.get("callback_query")
        if isinstance(callback, dict) and isinstance(callback.get("message"), dict):
            self._store(callback["message"])
        self._queue.append(update)
        self._updates_changed.set()
        return update

    def send_private_message(
        self,
        user_id: int,
        text: str,
        first_name: str = "Анна",
        username: str | None = None,
        **message_fields: Any,
    ) -> JSON:
        """A user writes to the bot in private; commands get a ``bot_command`` entity like in Telegram."""
        user = self._user(user_id, first_name, username)
        message: JSON = {
            "message_id": next(self._message_ids),
            "from": user,
            "chat": self._private_chat(user),
            "date": int(time.time()),
            "text": text,
        }
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": _utf16_len(command)}]
        message.update(message_fields)
        return self.push_update({"message": message})

    def press_button(
        self,
        user_id: int,
        data: str,
        message_id: int | None = None,
        first_name: str = "Анна",
        username: str | None = None,
    ) -> JSON:
        """A user taps an inline button under a bot message (the last one in the chat by default)."""
        user = self._user(user_id, first_name, username)
        message = self._find_bot_message(user_id, message_id)
        if message is None:
            message = {
                "message_id": message_id if message_id is not None else next(self._message_ids),
                "from": self._bot_user(),
                "chat": self._private_chat(user),
                "date": int(time.time()),
                "text": "…",
            }
        callback = {
            "id": str(next(self._callback_ids)),
            "from": user,
            "message": message,
            "chat_instance": str(abs(hash(("chat_instance", user_id)))),
            "data": data,
        }
        return self.push_update({"callback_query": callback})

    def post_in_channel(self, chat_id: int, text: str, title: str | None = None) -> JSON:
        """A post appears in a channel where the bot is an admin (``channel_post`` update)."""
        chat = dict(self._chat(chat_id))
        if title is not None:
            chat["title"] = title
        self._chats[chat_id] = chat
        post = {
            "message_id": next(self._message_ids),
            "sender_chat": chat,
            "chat": chat,
            "date": int(time.time()),
            "text": text,
        }
        return self.push_update({"channel_post": post})

    def register_chat(self, chat: JSON) -> None:
        """Override how a chat id is described (e.g. a supergroup) in responses and getChat."""
        self._chats[int(chat["id"])] = dict(chat)

    def add_file(self, content: bytes, file_name: str = "file.bin", kind: str = "document") -> JSON:
        """Store a file (e.g. one a user sent) so getFile and downloads by the bot work."""
        return self._store_file(content, file_name, kind)

    # ------------------------------------------------------------------ HTTP handlers

    async def _handle_method(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        requested = request.match_info["method"]
        canonical, handler = self._handlers.get(requested.lower(), (requested, self._true))
        params, files, filenames = await _parse_request(request)
        self._token = token
        call = Call(canonical, params, files, filenames, token=token)
        self.calls.append(call)
        self._calls_changed.set()
        try:
            await self._hang(call)
            self._check_faults(call)
            result = await handler(call)
        except TelegramError as error:
            call.status = error.status
            return web.json_response(error.payload(), status=error.status)
        return web.json_response({"ok": True, "result": result})

    async def _handle_file(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        for content, file_obj in self._uploads.values():
            if file_obj["file_path"] == path:
                return web.Response(body=content, content_type="application/octet-stream")
        return web.json_response(
            {"ok": False, "error_code": 404, "description": "Not Found: file not found"}, status=404
        )

    def _check_faults(self, call: Call) -> None:
        for key in (call.method.lower(), "*"):
            queue = self._faults.get(key, [])
            chat_id = call.params.get("chat_id")
            fault = next((f for f in queue if f.chat_id is None or f.chat_id == chat_id), None)
            if fault is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    queue.remove(fault)
                raise TelegramError(fault.status, fault.description, fault.parameters)
        chat_id = call.params.get("chat_id")
        if (
            chat_id is not None
            and chat_id in self.blocked_chats
            and call.method.lower().startswith(_BLOCKABLE_PREFIXES)
        ):
            raise TelegramError(403, "Forbidden: bot was blocked by the user")

    # ------------------------------------------------------------------ method implementations

    async def _true(self, call: Call) -> bool:
        return True

    async def _get_me(self, call: Call) -> JSON:
        return {
            **self._bot_user(call.token),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_updates(self, call: Call) -> list[JSON]:
        """Long polling: confirm by offset, then wait (capped) for something deliverable."""
        params = call.params
        offset = int(params.get("offset") or 0)
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = min(max(float(params.get("timeout") or 0), 0.0), self.max_poll_timeout)
        if "allowed_updates" in params:
            self._allowed_updates = set(params["allowed_updates"] or ()) or None
        if offset > 0:
            self._queue = [u for u in self._queue if u["update_id"] >= offset]
        elif offset < 0:
            self._queue = self._queue[offset:]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self._drop_unwanted_updates()
            if self._queue or self._closing:
                return self._queue[:limit]
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            self._updates_changed.clear()
            with suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._updates_changed.wait()

    async def _set_my_commands(self, call: Call) -> bool:
        self.commands[self._commands_key(call)] = list(call.params.get("commands") or [])
        return True

    async def _get_my_commands(self, call: Call) -> list[JSON]:
        return self.commands.get(self._commands_key(call), [])

    async def _delete_my_commands(self, call: Call) -> bool:
        self.commands.pop(self._commands_key(call), None)
        return True

    async def _send_message(self, call: Call) -> JSON:
        params = call.params
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise _bad_request("message text is empty")
        text = _visible_text(text, params.get("parse_mode"))
        if len(text) > MAX_TEXT_LENGTH:
            raise _bad_request("message is too long")
        message = self._new_message(call)
        message["text"] = text
        if params.get("entities"):
            message["entities"] = params["entities"]
        return self._store(message)

    async def _edit_message_text(self, call: Call) -> JSON | bool:
        params = call.params
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise _bad_request("message text is empty")
        text = _visible_text(text, params.get("parse_mode"))
        if len(text) > MAX_TEXT_LENGTH:
            raise _bad_request("message is too long")
        markup = self._checked_markup(params.get("reply_markup"))
        if params.get("inline_message_id"):
            return True
        message = self._existing_message(call, "message to edit not found")
        if message.get("text") == text and message.get("reply_markup") == markup:
            raise self._not_modified()
        message["text"] = text
        message["edit_date"] = int(time.time())
        self._set_markup(message, markup)
        return message

    async def _edit_message_reply_markup(self, call: Call) -> JSON | bool:
        markup = self._checked_markup(call.params.get("reply_markup"))
        if call.params.get("inline_message_id"):
            return True
        message = self._existing_message(call, "message to edit not found")
        if message.get("reply_markup") == markup:
            raise self._not_modified()
        message["edit_date"] = int(time.time())
        self._set_markup(message, markup)
        return message

    async def _send_photo(self, call: Call) -> JSON:
        message = self._new_message(call)
        self._apply_caption(message, call.params)
        message["photo"] = self._photo_sizes(call, call.params.get("photo"))
        return self._store(message)

    async def _send_document(self, call: Call) -> JSON:
        message = self._new_message(call)
        self._apply_caption(message, call.params)
        message["document"] = self._input_file(call, call.params.get("document"), "document")
        return self._store(message)

    async def _send_media_group(self, call: Call) -> list[JSON]:
        media = call.params.get("media")
        if not isinstance(media, list) or not media:
            raise _bad_request("media is empty")
        group_id = str(next(self._media_group_ids))
        messages: list[JSON] = []
        for item in media:
            message = self._new_message(call)
            message["media_group_id"] = group_id
            self._apply_caption(message, item)
            kind = str(item.get("type", "photo"))
            if kind == "photo":
                message["photo"] = self._photo_sizes(call, item.get("media"))
            else:
                message[kind] = self._input_file(call, item.get("media"), kind)
            messages.append(self._store(message))
        return messages

    async def _delete_message(self, call: Call) -> bool:
        key = (self._chat_key(call.params.get("chat_id", 0)), int(call.params.get("message_id") or 0))
        if self._messages.pop(key, None) is None:
            raise _bad_request("message to delete not found")
        return True

    async def _get_chat(self, call: Call) -> JSON:
        chat_id = call.params.get("chat_id")
        if chat_id is None:
            raise _bad_request("chat_id is empty")
        return {
            **self._chat(chat_id),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": True,
                "limited_gifts": True,
                "unique_gifts": True,
                "premium_subscription": True,
                "gifts_from_channels": True,
            },
        }

    async def _get_file(self, call: Call) -> JSON:
        stored = self._uploads.get(str(call.params.get("file_id")))
        if stored is None:
            raise _bad_request("invalid file_id")
        _, file_obj = stored
        return {key: file_obj[key] for key in ("file_id", "file_unique_id", "file_size", "file_path")}

    # ------------------------------------------------------------------ object builders

    def _next_update_id(self) -> int:
        update_id = next(self._update_ids)
        while update_id <= self._last_update_id:
            update_id = next(self._update_ids)
        return update_id

    def _drop_unwanted_updates(self) -> None:
        """Mirror Telegram: update types the bot did not subscribe to are never delivered."""
        kept: list[JSON] = []
        for update in self._queue:
            kind = _update_type(update)
            wanted = (
                kind not in _OPT_IN_UPDATE_TYPES
                if self._allowed_updates is None
                else kind in self._allowed_updates
            )
            (kept if wanted else self.dropped_updates).append(update)
        self._queue = kept

    def _bot_user(self, token: str | None = None) -> JSON:
        prefix = (token or self._token).split(":", 1)[0]
        bot_id = int(prefix) if prefix.isdigit() else DEFAULT_BOT_ID
        return {"id": bot_id, "is_bot": True, "first_name": BOT_FIRST_NAME, "username": BOT_USERNAME}

    def _user(self, user_id: int, first_name: str, username: str | None) -> JSON:
        user: JSON = {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "ru"}
        if username:
            user["username"] = username
        self._chats[user_id] = self._private_chat(user)
        return user

    @staticmethod
    def _private_chat(user: JSON) -> JSON:
        chat: JSON = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
        if "username" in user:
            chat["username"] = user["username"]
        return chat

    def _chat_key(self, chat_id: ChatId) -> int:
        if isinstance(chat_id, str) and not chat_id.lstrip("-").isdigit():
            name = chat_id.lstrip("@")
            if name not in self._named_chats:
                self._named_chats[name] = -1_001_000_000_000 - len(self._named_chats) - 1
            return self._named_chats[name]
        return int(chat_id)

    def _chat(self, chat_id: ChatId) -> JSON:
        """Describe a chat by id: positive = private, -100… = channel, other negative = group."""
        key = self._chat_key(chat_id)
        if key in self._chats:
            return dict(self._chats[key])
        if isinstance(chat_id, str) and key in self._named_chats.values():
            name = chat_id.lstrip("@")
            return {"id": key, "type": "channel", "title": name, "username": name}
        if key > 0:
            return {"id": key, "type": "private", "first_name": "User"}
        if str(key).startswith("-100"):
            return {"id": key, "type": "channel", "title": f"Channel {key}"}
        return {"id": key, "type": "group", "title": f"Group {key}"}

    def _new_message(self, call: Call) -> JSON:
        params = call.params
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise _bad_request("chat_id is empty")
        chat = self._chat(chat_id)
        message: JSON = {"message_id": next(self._message_ids), "date": int(time.time()), "chat": chat}
        if chat["type"] == "channel":
            message["sender_chat"] = chat
        else:
            message["from"] = self._bot_user(call.token)
        if params.get("message_thread_id"):
            message["message_thread_id"] = params["message_thread_id"]
        reply_to = params.get("reply_to_message_id")
        if isinstance(params.get("reply_parameters"), dict):
            reply_to = params["reply_parameters"].get("message_id")
        if reply_to is not None:
            original = self._messages.get((chat["id"], int(reply_to)))
            if original is not None:
                message["reply_to_message"] = {k: v for k, v in original.items() if k != "reply_to_message"}
        self._set_markup(message, self._checked_markup(params.get("reply_markup")))
        return message

    @staticmethod
    def _checked_markup(markup: Any) -> JSON | None:
        """Reject callback_data Telegram would reject, so bugs surface in tests, not in prod."""
        inline = _inline_markup(markup)
        if inline is None:
            return None
        for row in inline.get("inline_keyboard") or []:
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA_BYTES:
                    raise _bad_request("BUTTON_DATA_INVALID")
        return inline

    @staticmethod
    def _set_markup(message: JSON, markup: JSON | None) -> None:
        if markup is None:
            message.pop("reply_markup", None)
        else:
            message["reply_markup"] = markup

    @staticmethod
    def _not_modified() -> TelegramError:
        return _bad_request(
            "message is not modified: specified new message content and reply markup are exactly "
            "the same as a current content and reply markup of the message"
        )

    @staticmethod
    def _apply_caption(message: JSON, params: JSON) -> None:
        caption = params.get("caption")
        if not caption:
            return
        caption = _visible_text(str(caption), params.get("parse_mode"))
        if len(caption) > MAX_CAPTION_LENGTH:
            raise _bad_request("message caption is too long")
        message["caption"] = caption
        if params.get("caption_entities"):
            message["caption_entities"] = params["caption_entities"]

    def _store(self, message: JSON) -> JSON:
        self._messages[(int(message["chat"]["id"]), int(message["message_id"]))] = message
        return message

    def _existing_message(self, call: Call, missing: str) -> JSON:
        chat_id = call.params.get("chat_id")
        message_id = call.params.get("message_id")
        if chat_id is None or message_id is None:
            raise _bad_request(missing)
        message = self._messages.get((self._chat_key(chat_id), int(message_id)))
        if message is None:
            raise _bad_request(missing)
        return message

    def _find_bot_message(self, chat_id: int, message_id: int | None) -> JSON | None:
        if message_id is not None:
            return self._messages.get((chat_id, message_id))
        own = [
            message
            for (chat, _), message in self._messages.items()
            if chat == chat_id and message.get("from", {}).get("is_bot")
        ]
        return max(own, key=lambda m: m["message_id"]) if own else None

    def _commands_key(self, call: Call) -> tuple[str, str]:
        scope = call.params.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(call.params.get("language_code") or "")

    def _store_file(self, content: bytes, file_name: str, kind: str) -> JSON:
        number = next(self._file_ids)
        extension = mimetypes.guess_extension(mimetypes.guess_type(file_name)[0] or "") or ""
        file_obj: JSON = {
            "file_id": f"FAKE{kind.upper()}{number:06d}",
            "file_unique_id": f"U{number:06d}",
            "file_size": len(content),
            "file_path": f"{kind}s/file_{number}{extension}",
            "file_name": file_name,
            "mime_type": mimetypes.guess_type(file_name)[0] or "application/octet-stream",
        }
        self._uploads[file_obj["file_id"]] = (content, file_obj)
        return file_obj

    def _resolve_input(self, call: Call, value: Any, kind: str) -> JSON:
        """Map an ``attach://`` upload, a known file_id or a URL to a stored file object."""
        if isinstance(value, str) and value.startswith("attach://"):
            part = value.removeprefix("attach://")
            if part not in call.files:
                raise _bad_request(f"file must be non-empty: attachment {part} not found")
            return self._store_file(call.files[part], call.filenames.get(part) or part, kind)
        if isinstance(value, str) and value in self._uploads:
            return self._uploads[value][1]
        if not value:
            raise _bad_request(f"there is no {kind} in the request")
        name = str(value).rstrip("/").rsplit("/", 1)[-1] or f"{kind}.bin"
        return self._store_file(b"", name, kind)

    def _photo_sizes(self, call: Call, value: Any) -> list[JSON]:
        stored = self._resolve_input(call, value, "photo")
        base = {"file_id": stored["file_id"], "file_unique_id": stored["file_unique_id"]}
        return [
            {**base, "width": 320, "height": 240, "file_size": stored["file_size"] // 4},
            {**base, "width": 1280, "height": 960, "file_size": stored["file_size"]},
        ]

    def _input_file(self, call: Call, value: Any, kind: str) -> JSON:
        stored = self._resolve_input(call, value, kind)
        return {
            key: stored[key] for key in ("file_id", "file_unique_id", "file_name", "mime_type", "file_size")
        }
