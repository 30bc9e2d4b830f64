"""Writing exported rows to CSV, XLSX or Parquet, one chunk at a time (nothing holds the whole period).

Formula injection (OWASP "CSV injection"): a spreadsheet runs a cell that starts with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return as a formula, and event texts come from strangers talking to
the assistant. In CSV and XLSX every such *text* cell gets a leading ``'``, so it is shown as typed,
never run. That includes phones like ``+79991234567``: the owner still reads the number (as
``'+79991234567``), which is better than Excel turning it into 79991234567 or a formula. Numbers are
written as numbers and never prefixed (a refund of -500 stays a number).

Parquet is a typed data file for pandas/BI tools, not a spreadsheet: nothing there is evaluated, so it
keeps every value exactly as stored.

openpyxl and pyarrow are imported inside the writers only: other commands must start fast.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from datetime import datetime, tzinfo
from pathlib import Path
from typing import IO, Any, Protocol

from bot.export.columns import COLUMNS, HEADER, Kind
from reports.texts import export as texts

FORMATS = ("csv", "xlsx", "parquet")
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# Excel's limit for one cell; longer texts are cut with a mark (the CSV and Parquet keep them whole).
XLSX_CELL_LIMIT = 32_767
# Control characters XML 1.0 (and so XLSX) cannot hold; openpyxl refuses them.
_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def neutralise(text: str) -> str:
    """A text a spreadsheet shows but never evaluates."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


class ExportWriter(Protocol):
    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        """Append rows of typed values in ``COLUMNS`` order (aware local datetimes)."""

    def written_bytes(self) -> int | None:
        """Bytes in the file so far, or None when the format keeps them elsewhere until closed (XLSX)."""

    def close(self) -> None:
        """Finish the file; it is complete only after this."""

    def abort(self) -> None:
        """Release the file after a failure; the caller deletes it."""


def _csv_number(value: float) -> str:
    # Russian Excel reads "0,92" as a number and "0.92" as text (or a date): decimal comma with ';'.
    return repr(value).replace(".", ",")


class CsvExport:
    """UTF-8 with BOM and ``;``: what Excel with Russian regional settings opens with a double click."""

    def __init__(self, path: Path) -> None:
        self._raw: IO[bytes] = path.open("wb")
        self._file = io.TextIOWrapper(self._raw, encoding="utf-8-sig", newline="")
        self._csv = csv.writer(self._file, delimiter=";")
        self._csv.writerow(HEADER)

    @staticmethod
    def _cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, str):
            return neutralise(value)
        if isinstance(value, datetime):
            return value.isoformat(timespec="milliseconds")
        if isinstance(value, float):
            return _csv_number(value)
        return str(value)

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        cell = self._cell
        self._csv.writerows([cell(value) for value in row] for row in rows)

    def written_bytes(self) -> int:
        self._file.flush()
        return self._raw.tell()

    def close(self) -> None:
        self._file.close()

    def abort(self) -> None:
        self._file.close()


class XlsxExport:
    """openpyxl in write-only mode (rows go to a temporary file, not memory); bold header, widths, frozen
    header row. Excel has no time zones: times are written as the configured zone's wall-clock time."""

    def __init__(self, path: Path) -> None:
        from openpyxl import Workbook
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.styles import Font
        from openpyxl.utils import get_column_letter

        self._path = path
        self._book = Workbook(write_only=True)
        self._sheet = self._book.create_sheet("events")
        for index, column in enumerate(COLUMNS, start=1):
            self._sheet.column_dimensions[get_column_letter(index)].width = column.width
        self._sheet.freeze_panes = "A2"
        bold = Font(bold=True)
        header = []
        for name in HEADER:
            cell = WriteOnlyCell(self._sheet, value=name)
            cell.font = bold
            header.append(cell)
        self._sheet.append(header)

    @staticmethod
    def _cell(value: Any) -> Any:
        if isinstance(value, str):
            text = neutralise(_XML_ILLEGAL.sub("\ufffd", value))
            if len(text) > XLSX_CELL_LIMIT:
                text = text[: XLSX_CELL_LIMIT - len(texts.XLSX_CUT_MARK)] + texts.XLSX_CUT_MARK
            return text
        if isinstance(value, datetime):
            return value.replace(tzinfo=None)
        return value

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        cell = self._cell
        for row in rows:
            self._sheet.append([cell(value) for value in row])

    def written_bytes(self) -> None:
        return None

    def close(self) -> None:
        self._book.save(self._path)

    def abort(self) -> None:
        self._book.close()


class ParquetExport:
    """One row group per chunk, typed columns: timestamps with the zone, float64, int64, strings."""

    def __init__(self, path: Path, zone: tzinfo) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        types = {
            Kind.TEXT: pa.string(),
            Kind.TIME: pa.timestamp("us", tz=str(zone)),
            Kind.FLOAT: pa.float64(),
            Kind.INT: pa.int64(),
        }
        self._pa = pa
        self._schema = pa.schema([pa.field(column.name, types[column.kind]) for column in COLUMNS])
        self._sink = pa.OSFile(str(path), "wb")
        self._writer = pq.ParquetWriter(self._sink, self._schema, compression="zstd")

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        columns = {name: [row[index] for row in rows] for index, name in enumerate(HEADER)}
        self._writer.write_table(self._pa.Table.from_pydict(columns, schema=self._schema))

    def written_bytes(self) -> int:
        return int(self._sink.tell())

    def close(self) -> None:
        self._writer.close()
        self._sink.close()

    def abort(self) -> None:
        self.close()


def open_writer(fmt: str, path: Path, zone: tzinfo) -> ExportWriter:
    """A writer for ``fmt`` (one of ``FORMATS``) creating ``path``."""
    if fmt == "csv":
        return CsvExport(path)
    if fmt == "xlsx":
        return XlsxExport(path)
    if fmt == "parquet":
        return ParquetExport(path, zone)
    raise ValueError(f"unknown export format {fmt!r}: expected {' | '.join(FORMATS)}")
