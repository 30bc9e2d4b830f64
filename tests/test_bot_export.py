"""/export through the real aiogram stack against the fake Bot API: the file, its caption, the refusals."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
from sqlalchemy import select

from bot.export.columns import HEADER
from bot.ingestion.validation import validate_items
from storage.models import OwnerAudit
from tests.bot_harness import OWNER, STRANGER, BotHarness, bot_harness
from tests.export_data import EXPECTED_EVENTS, EXPORT_EVENTS, HYPERLINK
from tests.fake_bot_api import Call

MOSCOW = ZoneInfo("Europe/Moscow")


async def load_events(harness: BotHarness) -> None:
    validated = validate_items(EXPORT_EVENTS, MOSCOW)
    assert validated.errors == []
    await harness.writer.write(validated.rows)


def uploaded(call: Call) -> tuple[str, bytes]:
    reference = call.params["document"]
    return call.filenames[reference.removeprefix("attach://")], call.attachment(reference)


async def test_owner_gets_xlsx_then_csv_of_one_location_then_empty(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as harness:
        api = harness.api
        await load_events(harness)
        api.send_private_message(OWNER, "/export 2025-03-10..2025-03-11")
        [sent] = await api.wait_for("sendDocument", timeout=60)
        name, content = uploaded(sent)
        assert name == "leadtrail_2025-03-10_2025-03-11.xlsx"
        caption = sent.params["caption"]
        assert "Выгрузка событий за 10.03.2025 — 11.03.2025" in caption
        assert "Событий: 5" in caption and "Excel (XLSX)" in caption
        rows = list(openpyxl.load_workbook(io.BytesIO(content), read_only=True)["events"].values)
        assert rows[0] == HEADER
        assert [row[HEADER.index("event")] for row in rows[1:]] == EXPECTED_EVENTS
        assert rows[1][HEADER.index("message")] == "'" + HYPERLINK
        assert rows[1][HEADER.index("name")] == "Анна Петрова"

        api.send_private_message(OWNER, "/export CSV 2025-03-10..2025-03-11 @Баумана")
        second = (await api.wait_for("sendDocument", count=2, timeout=60))[1]
        name, content = uploaded(second)
        assert name.endswith(".csv") and content.startswith(b"\xef\xbb\xbf")
        table = list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline=""), delimiter=";"))
        assert len(table) == 2 and table[1][HEADER.index("location")] == "Баумана"
        assert "Точка: Баумана" in second.params["caption"] and "Событий: 1" in second.params["caption"]

        api.send_private_message(OWNER, "/export 2024-01-01")
        [empty] = await api.wait_for("sendMessage", timeout=60)
        assert empty.params["text"] == "За 01.01.2024 событий нет — выгружать нечего."
        assert len(api.calls_of("sendDocument")) == 2

        async with harness.db.sessions() as session:
            audit = (await session.execute(select(OwnerAudit).order_by(OwnerAudit.id))).scalars().all()
        assert [(entry.owner_id, entry.action) for entry in audit] == [(OWNER, "export")] * 3
        assert audit[1].details == "CSV 2025-03-10..2025-03-11 @Баумана"


async def test_too_big_wrong_and_strangers_get_no_file(tmp_path: Path) -> None:
    async with bot_harness(tmp_path, upload_limit_bytes=1024) as harness:
        api = harness.api
        await load_events(harness)
        api.send_private_message(OWNER, "/export 2025-03-10..2025-03-11 csv")
        [too_big] = await api.wait_for("sendMessage", timeout=60)
        text = too_big.params["text"]
        assert (
            "Выгрузка за 10.03.2025 — 11.03.2025 больше, чем Telegram разрешает боту отправить (1,0 КБ)"
            in text
        )
        assert "<code>leadtrail export --from 2025-03-10 --to 2025-03-11 --out events.csv</code>" in text

        api.send_private_message(OWNER, "/export <вчера> xlsx")
        api.send_private_message(OWNER, "/export 7d csv xlsx")
        api.send_private_message(STRANGER, "/export 30d")
        calls = (await api.wait_for("sendMessage", count=4, timeout=60))[1:]
        # Updates are handled concurrently: match the answers by chat and content, not by order.
        owner = sorted(call.params["text"] for call in calls if call.params["chat_id"] == OWNER)
        assert len(owner) == 2
        assert owner[0].startswith("Не понял «&lt;вчера&gt; xlsx»")
        assert owner[1].startswith("Не понял «7d csv xlsx»")
        [stranger] = [call.params["text"] for call in calls if call.params["chat_id"] == STRANGER]
        assert "только владельцам" in stranger
        assert api.calls_of("sendDocument") == []
