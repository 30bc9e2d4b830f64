"""Load from wrk (a compiled HTTP load generator) instead of Python coroutines, for ``bench.sustained``.

On a two-core machine a Python client that sends 1,400 requests a second needs about a core of its
own, and its event loop's queueing shows up as server latency. wrk costs a few per cent of a core, so
what it measures is the server. Install it with ``apt-get install wrk`` (Debian's build has LuaJIT).

The Lua script keeps the same schedule as the Python senders: each wrk thread owes its connections'
requests at fixed steps (a clock read through LuaJIT's FFI), sends at once when behind, and never sends
early; the first round is spread over one interval, not fired at once. Bodies are seed-shaped events
(``bench.common.seed_events``) with a fresh ``event_id`` each, so nothing is a duplicate, stamped with
the moment they are sent, as a live assistant's events are. wrk prints one JSON line at the end, read
back here.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.common import seed_events

RESULT_PREFIX = "LEADTRAIL-WRK "
EVENT_ID_SLOT = "@@EVENT_ID@@"
TIMESTAMP_SLOT = "@@TIMESTAMP@@"
TEMPLATES = 2000

_SCRIPT = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } leadtrail_timespec;
int clock_gettime(int clock_id, leadtrail_timespec *now);
]]
local clock = ffi.new("leadtrail_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, clock)  -- CLOCK_MONOTONIC
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end

local wall = ffi.new("leadtrail_timespec")
local function now_iso()
  ffi.C.clock_gettime(0, wall)  -- CLOCK_REALTIME, in UTC with milliseconds
  local ms = math.floor(tonumber(wall.tv_nsec) / 1e6)
  return os.date("!%Y-%m-%dT%H:%M:%S", tonumber(wall.tv_sec)) .. string.format(".%03dZ", ms)
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_number", #threads)
end

function init(args)
  templates = {}
  for line in io.lines(args[1]) do templates[#templates + 1] = line end
  per_request = tonumber(args[2])
  step_ms = tonumber(args[3])
  id_prefix = args[4] .. "-" .. thread_number .. "-"
  headers = {["Authorization"] = "Bearer " .. args[5], ["Content-Type"] = "application/json"}
  sent, acknowledged, refused = 0, 0, 0
  due = now_ms()
end

function delay()
  due = due + step_ms
  local wait = due - now_ms()
  if wait > 0 then return wait end
  return 0
end

function request()
  local parts = {}
  local stamp = now_iso()
  for i = 1, per_request do
    sent = sent + 1
    local template = templates[sent % #templates + 1]
    parts[i] = template:gsub("@@EVENT_ID@@", id_prefix .. sent, 1):gsub("@@TIMESTAMP@@", stamp, 1)
  end
  local body = parts[1]
  if per_request > 1 then body = "[" .. table.concat(parts, ",") .. "]" end
  return wrk.format("POST", "/v1/events", headers, body)
end

function response(status, headers, body)
  if status == 202 then acknowledged = acknowledged + per_request else refused = refused + 1 end
end

function done(summary, latency, requests)
  local acked, refusals = 0, 0
  for _, thread in ipairs(threads) do
    acked = acked + thread:get("acknowledged")
    refusals = refusals + thread:get("refused")
  end
  local e = summary.errors
  io.write(string.format(
    'LEADTRAIL-WRK {"requests": %d, "seconds": %f, "acknowledged_events": %d, "refused": %d, ' ..
    '"connect": %d, "read": %d, "write": %d, "timeout": %d, "status": %d, ' ..
    '"p50_ms": %f, "p99_ms": %f, "max_ms": %f}\n',
    summary.requests, summary.duration / 1e6, acked, refusals,
    e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
"""


def wrk_path() -> str | None:
    return shutil.which("wrk")


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    acknowledged_events: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]  # non-202 answers ("refused") and socket errors, by kind; only non-zero ones


def write_load_files(folder: Path, run_tag: str, replay: bool = False) -> tuple[Path, Path]:
    """The Lua script and the body templates (one seed-shaped event per line; its event_id a slot, and
    its timestamp too unless ``replay`` keeps the seed's)."""
    script = folder / "leadtrail-load.lua"
    script.write_text(_SCRIPT, encoding="utf-8")
    templates = folder / "events.ndjson"
    with templates.open("wb") as out:
        for event in seed_events(TEMPLATES, run_tag=run_tag):
            stamp = event["timestamp"] if replay else TIMESTAMP_SLOT
            out.write(orjson.dumps({**event, "event_id": EVENT_ID_SLOT, "timestamp": stamp}) + b"\n")
    return script, templates


async def run_wrk(
    url: str,
    files: tuple[Path, Path],
    *,
    token: str,
    tag: str,
    connections: int,
    threads: int,
    seconds: float,
    per_request: int,
    requests_per_second: float | None,
) -> WrkResult:
    """``connections`` senders for ``seconds``, together ``requests_per_second`` (None: back to back)."""
    binary = wrk_path()
    if binary is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk), use --client python")
    threads = max(1, min(threads, connections))
    step_ms = 0.0 if requests_per_second is None else 1000 * threads / requests_per_second
    script, templates = files
    process = await asyncio.create_subprocess_exec(
        binary, f"-t{threads}", f"-c{connections}", f"-d{seconds:.0f}s", "--timeout", "30s",
        "-s", str(script), url, "--", str(templates), str(per_request), f"{step_ms:.4f}", tag, token,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    text = output.decode(errors="replace")
    lines = [line for line in text.splitlines() if line.startswith(RESULT_PREFIX)]
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed with exit code {process.returncode}:\n{text[-2000:]}")
    data: dict[str, Any] = json.loads(lines[-1].removeprefix(RESULT_PREFIX))
    errors = {kind: int(data[kind]) for kind in ("refused", "connect", "read", "write", "timeout")}
    return WrkResult(
        requests=int(data["requests"]),
        seconds=float(data["seconds"]),
        acknowledged_events=int(data["acknowledged_events"]),
        p50_ms=float(data["p50_ms"]),
        p99_ms=float(data["p99_ms"]),
        max_ms=float(data["max_ms"]),
        errors={kind: count for kind, count in errors.items() if count},
    )
