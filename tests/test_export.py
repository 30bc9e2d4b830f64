"""Exports on SQLite and PostgreSQL: each format written from storage, then read back by its own reader."""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from openpyxl.utils import get_column_letter
from sqlalchemy.exc import OperationalError

from bot.export.columns import COLUMNS, HEADER
from bot.export.service import ExportTooBig, export_events
from bot.export.writers import XLSX_CELL_LIMIT, neutralise
from bot.ingestion.validation import validate_items
from reports.periods import period_between
from storage.database import Database, open_database
from storage.export_queries import EXPORT_SOURCE_COLUMNS, stream_events
from storage.writer import EventWriter
from tests.export_data import EXPECTED_EVENTS, EXPECTED_TIMES, EXPORT_EVENTS, HYPERLINK, REPLY

MOSCOW = ZoneInfo("Europe/Moscow")
PERIOD = period_between("2025-03-10", "2025-03-11")
COL = {name: index for index, name in enumerate(HEADER)}


@pytest.fixture
async def stored(db: Database, writer: EventWriter) -> Database:
    validated = validate_items(EXPORT_EVENTS, MOSCOW)
    assert validated.errors == []
    await writer.write(validated.rows)
    return db


def test_every_stored_column_is_exported_once() -> None:
    sources = [column.source for column in COLUMNS]
    assert sorted(sources) == sorted(EXPORT_SOURCE_COLUMNS)
    assert len(set(HEADER)) == len(HEADER)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("=1+1", "'=1+1"),
        ("+79991234567", "'+79991234567"),
        ("-Иван", "'-Иван"),
        ("@crm", "'@crm"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("Анна", "Анна"),
        ("", ""),
    ],
)
def test_neutralise(text: str, shown: str) -> None:
    assert neutralise(text) == shown


async def test_events_are_streamed_in_chunks_in_time_order(stored: Database) -> None:
    start, end = PERIOD.utc_bounds(MOSCOW)
    chunks = [chunk async for chunk in stream_events(stored, start, end, chunk_rows=2)]
    assert [len(chunk) for chunk in chunks] == [2, 2, 1]
    times = [row["ts"] for chunk in chunks for row in chunk]
    assert times == sorted(times)
    assert [row["event"] for chunk in chunks for row in chunk] == EXPECTED_EVENTS
    assert times[0] == datetime(2025, 3, 10, 6, 15, 0, 250000, tzinfo=UTC)


async def test_csv_opens_in_russian_excel_and_neutralises_formulas(stored: Database, tmp_path: Path) -> None:
    out = tmp_path / "events.csv"
    result = await export_events(stored, MOSCOW, PERIOD, "csv", out, chunk_rows=2)
    assert result.events == 5 and result.size_bytes == out.stat().st_size
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline=""), delimiter=";"))
    assert rows[0] == list(HEADER)
    body = rows[1:]
    assert [row[COL["timestamp"]] for row in body] == EXPECTED_TIMES
    first, answer, lead, _, payment = body
    assert first[COL["message"]] == "'" + HYPERLINK
    assert first[COL["phone"]] == "'+79991234567"
    assert first[COL["name"]] == "Анна Петрова"
    assert json.loads(first[COL["extra"]]) == {
        "utm_source": "вконтакте",
        "visit": {"n": 2, "from": "реклама"},
    }
    assert answer[COL["assistant_response"]] == REPLY
    assert answer[COL["confidence"]] == "0,92"
    assert answer[COL["response_time_ms"]] == "1800"
    assert (answer[COL["lat"]], answer[COL["lon"]]) == ("55,7887", "49,1221")
    assert answer[COL["extra"]] == ""
    assert (lead[COL["name"]], lead[COL["crm_id"]]) == ("'-Иван", "'@crm_7")
    assert lead[COL["reason"]] == "'\tтаб впереди"
    assert lead[COL["channel"]] == "whatsapp"
    assert payment[COL["amount"]] == "-500,5"
    assert payment[COL["appointment_at"]] == "2025-03-12T18:00:00.000+03:00"
    assert first[COL["client_id"]] == answer[COL["client_id"]] != lead[COL["client_id"]]
    assert first[COL["event_id"]].startswith("h:")
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".part")]


async def test_xlsx_has_bold_header_widths_typed_cells_and_no_formulas(
    stored: Database, tmp_path: Path
) -> None:
    out = tmp_path / "events.xlsx"
    result = await export_events(stored, MOSCOW, PERIOD, "xlsx", out, chunk_rows=2)
    assert result.events == 5
    book = openpyxl.load_workbook(out)
    sheet = book["events"]
    assert [cell.value for cell in sheet[1]] == list(HEADER)
    assert all(cell.font.bold for cell in sheet[1])
    assert sheet.freeze_panes == "A2"
    assert sheet.column_dimensions["A"].width == COLUMNS[0].width
    assert sheet.column_dimensions[get_column_letter(COL["message"] + 1)].width == 50
    body = list(sheet.iter_rows(min_row=2))
    assert len(body) == 5
    first, answer, lead, _, payment = body
    assert first[COL["timestamp"]].value == datetime(2025, 3, 10, 9, 15, 0, 250000)
    assert first[COL["timestamp"]].is_date
    message = first[COL["message"]]
    assert message.data_type == "s" and message.value == "'" + HYPERLINK
    assert first[COL["phone"]].value == "'+79991234567"
    assert first[COL["name"]].value == "Анна Петрова"
    assert json.loads(first[COL["extra"]].value)["visit"] == {"n": 2, "from": "реклама"}
    assert answer[COL["assistant_response"]].value == REPLY
    assert answer[COL["confidence"]].value == pytest.approx(0.92)
    assert answer[COL["response_time_ms"]].value == 1800
    assert answer[COL["message"]].value is None
    # XML cannot carry control characters: shown as a replacement mark instead of breaking the file.
    assert lead[COL["message"]].value == "звонок\ufffd дзынь"
    assert lead[COL["reason"]].value == "'\tтаб впереди"
    assert payment[COL["amount"]].value == -500.5
    assert payment[COL["appointment_at"]].value == datetime(2025, 3, 12, 18, 0)
    assert all(cell.data_type != "f" for row in body for cell in row)


async def test_parquet_keeps_types_zone_and_raw_values(stored: Database, tmp_path: Path) -> None:
    out = tmp_path / "events.parquet"
    result = await export_events(stored, MOSCOW, PERIOD, "parquet", out, chunk_rows=2)
    assert result.events == 5
    parquet = pq.ParquetFile(out)
    assert parquet.metadata.num_row_groups == 3  # one per chunk: written as streamed
    table = parquet.read()
    assert table.column_names == list(HEADER)
    schema = table.schema
    assert schema.field("timestamp").type == pa.timestamp("us", tz="Europe/Moscow")
    assert schema.field("appointment_at").type == pa.timestamp("us", tz="Europe/Moscow")
    for name in ("confidence", "amount", "lat", "lon"):
        assert schema.field(name).type == pa.float64()
    assert schema.field("response_time_ms").type == pa.int64()
    assert schema.field("message").type == pa.string()
    data = table.to_pylist()
    moments = [row["timestamp"] for row in data]
    assert [moment.astimezone(MOSCOW).isoformat(timespec="milliseconds") for moment in moments] == (
        EXPECTED_TIMES
    )
    first, answer, lead, _, payment = data
    assert first["message"] == HYPERLINK  # a data file, not a spreadsheet: kept exactly
    assert first["phone"] == "+79991234567"
    assert json.loads(first["extra"])["utm_source"] == "вконтакте"
    assert answer["confidence"] == pytest.approx(0.92) and answer["lat"] == pytest.approx(55.7887)
    assert answer["response_time_ms"] == 1800
    assert lead["name"] == "-Иван" and lead["message"] == "звонок\x07 дзынь"
    assert payment["amount"] == -500.5


async def test_location_limits_the_export(stored: Database, tmp_path: Path) -> None:
    out = tmp_path / "events.parquet"
    result = await export_events(stored, MOSCOW, PERIOD, "parquet", out, location="Баумана")
    assert result.events == 1
    assert pq.read_table(out).column("location").to_pylist() == ["Баумана"]


async def test_long_text_is_cut_to_excels_cell_limit(
    db: Database, writer: EventWriter, tmp_path: Path
) -> None:
    huge = {
        "timestamp": "2025-03-10T10:00:00+03:00",
        "event": "note",
        "user_id": "tg_9",
        "blob": "я" * 40_000,
    }
    validated = validate_items([huge], MOSCOW)
    await writer.write(validated.rows)
    out = tmp_path / "events.xlsx"
    await export_events(db, MOSCOW, PERIOD, "xlsx", out)
    extra = openpyxl.load_workbook(out, read_only=True)["events"].cell(2, COL["extra"] + 1).value
    assert len(extra) == XLSX_CELL_LIMIT and extra.endswith("…[обрезано]")


async def test_failed_export_leaves_the_old_file_and_no_partial(tmp_path: Path) -> None:
    out = tmp_path / "events.csv"
    out.write_text("старый файл", encoding="utf-8")
    # A database without the schema: the query fails after the writer has opened its partial file.
    broken = await open_database(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}", apply_migrations=False)
    try:
        with pytest.raises(OperationalError):
            await export_events(broken, MOSCOW, PERIOD, "csv", out)
    finally:
        await broken.close()
    assert out.read_text(encoding="utf-8") == "старый файл"
    assert sorted(os.listdir(tmp_path)) == ["empty.db", "events.csv"]


async def test_too_big_stops_and_leaves_nothing(stored: Database, tmp_path: Path) -> None:
    for fmt in ("csv", "parquet", "xlsx"):
        out = tmp_path / f"events.{fmt}"
        with pytest.raises(ExportTooBig):
            await export_events(stored, MOSCOW, PERIOD, fmt, out, chunk_rows=1, max_bytes=1000)
        assert not [name for name in os.listdir(tmp_path) if name.startswith((".events", "events"))]
    # The same limit with room to spare: the file is written.
    result = await export_events(stored, MOSCOW, PERIOD, "csv", tmp_path / "ok.csv", max_bytes=100_000)
    assert result.events == 5
