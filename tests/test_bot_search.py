"""/search through the real aiogram stack against the fake Bot API: escaping, buttons, audit, strangers."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from storage.models import OwnerAudit
from storage.search import SearchIndexer
from tests.bot_harness import OWNER, STRANGER, bot_harness
from tests.test_bot_clients import buttons, event, write


async def test_search_lists_clients_with_escaped_snippets_and_buttons_to_their_cards(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as harness:
        api = harness.api
        await write(
            harness,
            event("tg_1", 1, name="Гульнара <i>Сафина</i>", message="Хочу <b>стрижку</b> & укладку"),
            event(
                "tg_2",
                2,
                name="Айдар",
                event="assistant_response",
                assistant_response="Стрижка бороды — 800 ₽",
            ),
            event("tg_3", 3, name="Лилия", message="Запишите на маникюр"),
        )
        await SearchIndexer(harness.db).catch_up()

        api.send_private_message(OWNER, "/search Стрижка")
        [answer] = await api.wait_for("sendMessage", timeout=15)
        text = answer.params["text"]
        assert "&lt;b&gt;стрижку&lt;/b&gt; &amp; укладку" in text and "<b>стрижку" not in text
        assert "Гульнара &lt;i&gt;Сафина&lt;/i&gt;" in text
        assert "01.03.2025 10:02" in text  # local time of the latest match
        assert text.index("Айдар") < text.index("Гульнара") and "Лилия" not in text
        found = buttons(answer)
        assert [button["text"] for button in found] == ["1. Айдар", "2. Гульнара <i>Сафина</i>"]
        assert all(len(button["callback_data"].encode()) <= 64 for button in found)

        api.press_button(OWNER, found[1]["callback_data"])
        _, card, timeline = await api.wait_for("sendMessage", count=3, timeout=15)
        assert "Гульнара &lt;i&gt;Сафина&lt;/i&gt;" in card.params["text"]
        assert "Лента событий" in timeline.params["text"]

        async with harness.db.sessions() as session:
            audit = (await session.execute(select(OwnerAudit).order_by(OwnerAudit.id))).scalars().all()
        assert [(row.owner_id, row.action) for row in audit] == [(OWNER, "search"), (OWNER, "client.open")]
        assert audit[0].details == "Стрижка"


async def test_search_without_words_explains_and_unknown_words_say_so(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as harness:
        api = harness.api
        await write(harness, event("tg_1", 1, message="маникюр"))
        await SearchIndexer(harness.db).catch_up()
        api.send_private_message(OWNER, "/search")
        api.send_private_message(OWNER, "/search <script>педикюр</script> OR 1=1 --")
        api.send_private_message(OWNER, '/search "*"')
        # Updates are handled concurrently: the answers are told apart by what they say, not their order.
        answers = await api.wait_for("sendMessage", count=3, timeout=15)
        usage, nothing, punctuation = (
            next(call for call in answers if part in call.params["text"])
            for part in ("/search стрижка вечером", "&lt;script&gt;педикюр&lt;/script&gt;", '«"*"»')
        )
        assert "ничего не нашлось" in nothing.params["text"]
        assert "ничего не нашлось" in punctuation.params["text"]
        assert not buttons(nothing) and usage is not nothing


async def test_strangers_cannot_search(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as harness:
        api = harness.api
        await write(harness, event("tg_1", 1, name="Секретный Клиент", message="личное"))
        await SearchIndexer(harness.db).catch_up()
        api.send_private_message(STRANGER, "/search личное")
        [refusal] = await api.wait_for("sendMessage", timeout=15)
        assert refusal.params["chat_id"] == STRANGER
        assert "только владельцам" in refusal.params["text"]
        assert [
            call for call in api.calls if "Секретный" in str(call.params) or "личное" in str(call.params)
        ] == []
