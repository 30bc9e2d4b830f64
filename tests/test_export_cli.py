"""``leadtrail export`` as an operator runs it: the three formats, the period options, exit codes."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import openpyxl
import orjson
import pyarrow.parquet as pq
import pytest

from bot.cli.main import main
from bot.export.columns import HEADER
from tests.export_data import EXPECTED_EVENTS, EXPECTED_TIMES, EXPORT_EVENTS, HYPERLINK
from tests.processes import free_port, leadtrail, write_config


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding the export events, loaded with ``leadtrail ingest`` like real data."""
    folder = tmp_path_factory.mktemp("export-cli")
    path = write_config(
        folder / "c.toml",
        {"timezone": "Europe/Moscow", "database": {"url": f"sqlite+aiosqlite:///{folder / 'export.db'}"}},
    )
    events = folder / "events.ndjson"
    events.write_bytes(b"\n".join(orjson.dumps(item) for item in EXPORT_EVENTS) + b"\n")
    loaded = leadtrail("ingest", str(events), "--config", str(path))
    assert loaded.returncode == 0, loaded.stderr
    return path


def test_csv_with_from_and_to(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "events.csv"
    result = leadtrail(
        "export", "--format", "csv", "--from", "2025-03-10", "--to", "2025-03-11", "--out", str(out),
        "--config", str(config),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("exported 5 events (2025-03-10..2025-03-11)")
    text = out.read_bytes()
    assert text.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(text.decode("utf-8-sig"), newline=""), delimiter=";"))
    assert rows[0] == list(HEADER)
    assert [row[0] for row in rows[1:]] == EXPECTED_TIMES
    assert rows[1][HEADER.index("message")] == "'" + HYPERLINK


def test_format_from_the_extension_and_config_first(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "events.xlsx"
    result = leadtrail(
        "export", "--config", str(config), "--period", "2025-03-10..2025-03-11", "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    sheet = openpyxl.load_workbook(out, read_only=True)["events"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == HEADER
    assert [row[HEADER.index("event")] for row in rows[1:]] == EXPECTED_EVENTS


def test_bad_arguments_through_the_real_command(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "events.txt"
    result = leadtrail("export", "--out", str(out), "--period", "7d", "--config", str(config))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip() == (
        f"leadtrail: --format is missing and --out {str(out)!r} does not end in .csv, .xlsx or .parquet"
    )
    assert not out.exists()


# The cases below call the same entry point in-process: a subprocess each would cost seconds.


def test_parquet_of_one_location(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bauman.parquet"
    code = main(
        ["export", "--format", "parquet", "--from", "2025-03-01", "--to", "2025-03-31", "--location",
         "Баумана", "--out", str(out), "--config", str(config)]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert capsys.readouterr().out.startswith("exported 1 events (2025-03-01..2025-03-31)")
    assert pq.read_table(out).column("message").to_pylist() == [HYPERLINK]


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        (["--out", "{tmp}/e.csv", "--from", "2025-03-01"], "--from and --to go together"),
        (["--out", "{tmp}/e.csv", "--period", "week"], "'week'"),
        (["--out", "{tmp}/e.csv", "--from", "2025-03-05", "--to", "2025-03-01"], "the end is before"),
        (
            ["--out", "{tmp}/e.csv", "--period", "7d", "--from", "2025-03-01", "--to", "2025-03-02"],
            "not both",
        ),
        (["--out", "{tmp}/no/such/e.csv", "--period", "7d"], "does not exist"),
        (["--out", "{tmp}", "--period", "7d", "--format", "csv"], "is a folder"),
        (["--out", "{tmp}/e.csv", "--location", " "], "--location"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], reason: str
) -> None:
    code = main(["export", *(a.format(tmp=tmp_path) for a in arguments), "--config", str(config)])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("leadtrail: ")
    assert reason in lines[0]
    assert os.listdir(tmp_path) == []


def test_unknown_format_and_missing_out_are_usage_errors(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as unknown:
        main(["export", "--format", "docx", "--out", str(tmp_path / "e.docx"), "--config", str(config)])
    assert unknown.value.code == 2 and "invalid choice: 'docx'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as missing:
        main(["export", "--period", "7d", "--config", str(config)])
    assert missing.value.code == 2 and "--out" in capsys.readouterr().err


def test_unreachable_database_exits_1_with_one_line(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/none"
    path = write_config(tmp_path / "c.toml", {"database": {"url": url}})
    result = leadtrail(
        "export", "--period", "yesterday", "--out", str(tmp_path / "e.csv"), "--config", str(path)
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("leadtrail: cannot open the database")
    assert not (tmp_path / "e.csv").exists()
