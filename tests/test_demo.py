"""``leadtrail demo``: a newcomer sees the report, the charts and a timeline without a token."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from PIL import Image

from tests.processes import leadtrail


def test_demo_writes_report_charts_and_a_timeline(tmp_path: Path) -> None:
    out = tmp_path / "showcase"
    result = leadtrail("demo", "--out", str(out), "--days", "14")
    assert result.returncode == 0, result.stderr
    assert "Отчёт за" in result.stdout and "Диалог → заявка" in result.stdout
    assert "нет свободных вечерних слотов" in result.stdout
    for name in ("funnel.png", "trend.png", "answer-times.png", "heatmap.png", "client-journey.png"):
        with Image.open(out / name) as picture:
            assert picture.format == "PNG" and picture.size == (1200, 800)
        assert str(out / name) in result.stdout
    assert "Отчёт за" in (out / "report.txt").read_text(encoding="utf-8")
    assert "Клиент #" in (out / "client.txt").read_text(encoding="utf-8")
    with sqlite3.connect(out / "leadtrail-demo.db") as db:
        stored = db.execute("SELECT count(*) FROM events").fetchone()[0]
    assert f"в базе {stored:,}".replace(",", "\xa0") in result.stdout
    assert f"доставлено {stored:,}".replace(",", "\xa0") in result.stdout
