"""A few seconds of ``bench.sustained`` (issue 7.4) as a correctness check: under concurrent single and
batch senders every answer is a 202 and every acknowledged event is stored. Speed is the benchmark's business.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.sustained import run_sustained

pytestmark = pytest.mark.slow


async def test_short_sustained_load_has_no_errors_and_stores_every_acknowledged_event(tmp_path: Path) -> None:
    outcome = await run_sustained(
        tmp_path, seconds=2, senders=20, rate=100, batch_senders=2, batch_size=20, batch_rate=2
    )
    assert outcome.errors == {}, outcome.first_error
    assert outcome.single.requests >= 20 * 2  # the load really ran, not a handful of requests
    assert outcome.batch.requests >= 2
    assert outcome.acknowledged == outcome.stored
    assert outcome.acknowledged >= outcome.single.requests + 20 * outcome.batch.requests
    assert outcome.exit_code == 0
    assert 0 < outcome.rss_start <= outcome.rss_peak
