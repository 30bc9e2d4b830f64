"""Proves FakeBotAPI speaks the Bot API well enough for the real aiogram stack (session + dispatcher)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.filters import Command
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaDocument,
    InputMediaPhoto,
    Message,
)

from tests.fake_bot_api import BOT_USERNAME, FakeBotAPI

TOKEN = "123456789:TEST-leadtrail-fake-token"
USER_ID = 4242
CHANNEL_ID = -1001234567890


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as fake:
        yield fake


@pytest.fixture
async def bot(api: FakeBotAPI) -> AsyncIterator[Bot]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(api.base_url))
    bot = Bot(TOKEN, session=session)
    try:
        yield bot
    finally:
        await bot.session.close()


def echo_router() -> Router:
    """Tiny bot under test: echoes text, answers /start with a button, acks button taps."""
    router = Router()

    @router.message(Command("start"))
    async def start(message: Message) -> None:
        keyboard = InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text="Лиды", callback_data="leads:1")]]
        )
        await message.answer("Привет!", reply_markup=keyboard)

    @router.message(F.text)
    async def echo(message: Message) -> None:
        await message.answer(f"echo: {message.text}")

    @router.callback_query(F.data.startswith("leads:"))
    async def leads(callback: CallbackQuery) -> None:
        assert isinstance(callback.message, Message)
        await callback.message.edit_text(f"Страница {callback.data}")
        await callback.answer()

    @router.channel_post()
    async def channel_post(message: Message) -> None:
        await message.bot.send_message(USER_ID, f"post in {message.chat.title}: {message.text}")  # type: ignore[union-attr]

    return router


async def run_polling(dp: Dispatcher, bot: Bot) -> asyncio.Task[None]:
    task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, close_bot_session=False))
    return task


async def stop_polling(dp: Dispatcher, task: asyncio.Task[None]) -> None:
    await dp.stop_polling()
    await asyncio.wait_for(task, timeout=5)


async def test_dispatcher_polling_echo_roundtrip(api: FakeBotAPI, bot: Bot) -> None:
    dp = Dispatcher()
    dp.include_router(echo_router())
    task = await run_polling(dp, bot)
    try:
        api.send_private_message(USER_ID, "привет, бот")
        [call] = await api.wait_for("sendMessage")
        assert call.params["chat_id"] == USER_ID
        assert call.params["text"] == "echo: привет, бот"

        api.send_private_message(USER_ID, "42")
        calls = await api.wait_for("sendMessage", count=2)
        assert calls[1].params["text"] == "echo: 42"
        # Both updates get confirmed through the offset of a later getUpdates.
        await api.wait_confirmed()
        assert api.pending_updates == []
    finally:
        await stop_polling(dp, task)

    assert api.calls_of("getMe"), "start_polling resolves the bot via getMe"


async def test_command_button_and_edit_flow(api: FakeBotAPI, bot: Bot) -> None:
    dp = Dispatcher()
    dp.include_router(echo_router())
    task = await run_polling(dp, bot)
    try:
        update = api.send_private_message(USER_ID, "/start", username="anna_shop")
        assert update["message"]["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
        [call] = await api.wait_for("sendMessage")
        markup = call.params["reply_markup"]
        assert markup["inline_keyboard"][0][0]["callback_data"] == "leads:1"

        api.press_button(USER_ID, "leads:1")
        [edit] = await api.wait_for("editMessageText")
        await api.wait_for("answerCallbackQuery")
        assert edit.params["text"] == "Страница leads:1"
        edited = api.get_message(USER_ID, edit.params["message_id"])
        assert edited is not None and edited["text"] == "Страница leads:1"
        assert "reply_markup" not in edited  # edit without markup drops the keyboard, as in Telegram
        assert all(c.ok for c in api.calls)

        api.post_in_channel(CHANNEL_ID, "новый пост", title="LeadTrail News")
        calls = await api.wait_for("sendMessage", count=2)
        assert calls[1].params["text"] == "post in LeadTrail News: новый пост"
    finally:
        await stop_polling(dp, task)


async def test_updates_not_subscribed_are_dropped(api: FakeBotAPI, bot: Bot) -> None:
    router = Router()

    @router.message()
    async def any_message(message: Message) -> None:
        await message.answer("ok")

    dp = Dispatcher()
    dp.include_router(router)
    task = await run_polling(dp, bot)
    try:
        api.press_button(USER_ID, "ignored")
        api.send_private_message(USER_ID, "hi")
        await api.wait_for("sendMessage")
    finally:
        await stop_polling(dp, task)
    assert [u.keys() - {"update_id"} for u in api.dropped_updates] == [{"callback_query"}]


async def test_direct_calls_return_valid_aiogram_objects(api: FakeBotAPI, bot: Bot) -> None:
    me = await bot.get_me()
    assert me.is_bot and me.username == BOT_USERNAME and me.id == 123456789

    keyboard = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="A", callback_data="a")]])
    first = await bot.send_message(USER_ID, "one", reply_markup=keyboard)
    second = await bot.send_message(CHANNEL_ID, "<b>two</b> &amp; more", parse_mode="HTML")
    assert second.message_id > first.message_id
    assert first.chat.type == "private"
    assert first.reply_markup is not None  # echoed back (compare dumps: parsed objects carry a bot ref)
    assert first.reply_markup.model_dump() == keyboard.model_dump()
    assert first.from_user is not None and first.from_user.id == me.id
    assert second.chat.type == "channel" and second.text == "two & more"
    await bot.send_message(USER_ID, "42")  # string params are never JSON-decoded into ints
    assert api.calls_of("sendMessage")[-1].params["text"] == "42"

    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            "one", chat_id=USER_ID, message_id=first.message_id, reply_markup=keyboard
        )
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(USER_ID, "x" * 5000)
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        long_data = InlineKeyboardButton(text="x", callback_data="x" * 65)
        await bot.send_message(USER_ID, "t", reply_markup=InlineKeyboardMarkup(inline_keyboard=[[long_data]]))

    edited = await bot.edit_message_reply_markup(chat_id=USER_ID, message_id=first.message_id)
    assert isinstance(edited, Message) and edited.reply_markup is None
    assert await bot.delete_message(USER_ID, first.message_id)
    assert await bot.send_chat_action(USER_ID, "typing")
    assert await bot.answer_callback_query("123", text="ok")

    await bot.set_my_commands([BotCommand(command="start", description="Начать")])
    assert [c.command for c in await bot.get_my_commands()] == ["start"]
    assert await bot.delete_webhook(drop_pending_updates=True)

    chat = await bot.get_chat(CHANNEL_ID)
    assert chat.type == "channel"


async def test_file_uploads_are_parsed_from_multipart(api: FakeBotAPI, bot: Bot) -> None:
    photo = await bot.send_photo(USER_ID, BufferedInputFile(b"PNGDATA", "chart.png"), caption="Отчёт")
    [call] = api.calls_of("sendPhoto")
    assert call.attachment(call.params["photo"]) == b"PNGDATA"
    assert photo.caption == "Отчёт" and photo.photo

    doc = await bot.send_document(USER_ID, BufferedInputFile(b"a,b\n1,2\n", "leads.csv"))
    assert doc.document is not None and doc.document.file_name == "leads.csv"
    file = await bot.get_file(doc.document.file_id)
    assert file.file_path is not None
    downloaded = await bot.download_file(file.file_path)
    assert downloaded is not None and downloaded.read() == b"a,b\n1,2\n"

    album = await bot.send_media_group(
        USER_ID,
        media=[
            InputMediaPhoto(media=BufferedInputFile(b"P1", "1.png"), caption="первый"),
            InputMediaDocument(media=BufferedInputFile(b"D2", "2.pdf")),
        ],
    )
    assert len(album) == 2 and album[0].media_group_id == album[1].media_group_id
    [group_call] = api.calls_of("sendMediaGroup")
    media = group_call.params["media"]
    assert isinstance(media, list) and media[0]["caption"] == "первый"
    assert [group_call.attachment(item["media"]) for item in media] == [b"P1", b"D2"]


async def test_get_updates_confirms_by_offset(api: FakeBotAPI, bot: Bot) -> None:
    api.send_private_message(USER_ID, "a")
    api.push_update({"message": {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}}})
    updates = await bot.get_updates(timeout=0)
    assert [u.message.text if u.message else None for u in updates] == ["a", None]
    assert updates[0].update_id < updates[1].update_id

    again = await bot.get_updates(offset=updates[-1].update_id + 1, timeout=5)  # waits, capped at ~1 s
    assert again == []
    assert api.pending_updates == []


async def test_fail_next_retry_after_is_surfaced(api: FakeBotAPI, bot: Bot) -> None:
    api.fail_next("sendMessage", status=429, retry_after=1)
    with pytest.raises(TelegramRetryAfter) as excinfo:
        await bot.send_message(USER_ID, "hi")
    assert excinfo.value.retry_after == 1
    assert "Too Many Requests: retry after 1" in str(excinfo.value)
    assert not api.calls_of("sendMessage")[0].ok

    message = await bot.send_message(USER_ID, "hi")  # fault consumed: next call succeeds
    assert message.text == "hi"

    api.fail_next("sendMessage", status=502, times=2)
    for _ in range(2):
        with pytest.raises(TelegramServerError, match="Bad Gateway"):
            await bot.send_message(USER_ID, "hi")
    assert (await bot.send_message(USER_ID, "hi")).text == "hi"


async def test_blocked_chat_raises_forbidden(api: FakeBotAPI, bot: Bot) -> None:
    api.block_chat(USER_ID)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(USER_ID, "hi")
    with pytest.raises(TelegramForbiddenError):
        await bot.send_photo(USER_ID, BufferedInputFile(b"x", "x.png"))
    assert (await bot.send_message(USER_ID + 1, "other user")).chat.id == USER_ID + 1

    api.unblock_chat(USER_ID)
    assert (await bot.send_message(USER_ID, "back")).text == "back"


async def test_wait_for_times_out_with_context(api: FakeBotAPI) -> None:
    with pytest.raises(TimeoutError, match="expected 1 sendMessage"):
        await api.wait_for("sendMessage", timeout=0.05)
