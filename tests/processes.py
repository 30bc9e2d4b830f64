"""Running the real ``leadtrail`` command in a subprocess, the way an operator does."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import aiohttp


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):  # an inline table, e.g. one of [[ai.prices]] in a list
        return "{" + ", ".join(f"{key} = {toml_value(item)}" for key, item in value.items()) + "}"
    return json.dumps(str(value), ensure_ascii=False)


def write_config(path: Path, config: dict[str, Any]) -> Path:
    lines = [f"{key} = {toml_value(value)}" for key, value in config.items() if not isinstance(value, dict)]
    for section, values in config.items():
        if isinstance(values, dict):
            lines.append(f"\n[{section}]")
            lines.extend(f"{key} = {toml_value(value)}" for key, value in values.items())
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def process_tree(pid: int) -> list[int]:
    """The process and its children (``/proc``): ``leadtrail run`` and, on SQLite, its writer process."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *map(int, children)]


def clean_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("LEADTRAIL_")}


def leadtrail(
    *args: str, env: dict[str, str] | None = None, stdin: bytes | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a one-shot command and return its exit code and output."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        env={**clean_env(), **(env or {})},
        input=stdin.decode() if stdin is not None else None,
        timeout=120,
        cwd=cwd,
    )


@dataclass
class RunningService:
    process: asyncio.subprocess.Process
    url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    async def healthz(self) -> dict[str, Any]:
        async with aiohttp.ClientSession() as http, http.get(f"{self.url}/healthz") as response:
            result: dict[str, Any] = await response.json()
            return result

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.returncode is None:
            self.process.send_signal(sig)
            await asyncio.wait_for(self.process.wait(), 30)
        assert self.process.returncode is not None
        return self.process.returncode


async def _pump(source: asyncio.StreamReader, log: IO[bytes]) -> None:
    while chunk := await source.read(65536):
        log.write(chunk)
        log.flush()


@asynccontextmanager
async def running_service(
    config_path: Path, port: int, log_path: Path, *, preexec_fn: Callable[[], None] | None = None
) -> AsyncIterator[RunningService]:
    """``preexec_fn`` runs in the child before ``exec`` (e.g. to ignore SIGXFSZ); with it the child's log
    goes through a pipe that this process writes to ``log_path``, so a file-size limit put on the child
    (``resource.prlimit``) limits its database, not its log."""
    log = open(log_path, "wb")  # noqa: ASYNC230, SIM115 - the child's log, closed in the finally below
    output: int | IO[bytes] = log if preexec_fn is None else asyncio.subprocess.PIPE
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        "--config",
        str(config_path),
        stdout=output,
        stderr=asyncio.subprocess.STDOUT if preexec_fn is not None else log,
        env=clean_env(),
        preexec_fn=preexec_fn,
    )
    pump = None if process.stdout is None else asyncio.create_task(_pump(process.stdout, log))
    service = RunningService(process, f"http://127.0.0.1:{port}", log_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.returncode is not None:
                raise AssertionError(f"leadtrail run exited with {process.returncode}:\n{service.log()}")
            try:
                await service.healthz()
                break
            except aiohttp.ClientError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"leadtrail run did not become ready:\n{service.log()}") from None
                await asyncio.sleep(0.1)
        try:
            yield service
        except BaseException:
            # Shown by pytest beside the failure: what the process was doing when the test gave up.
            print(f"--- the last lines of leadtrail run's log ---\n{service.log()[-6000:]}")
            raise
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        if pump is not None:
            await pump
        log.close()


# Another program (a backup, a DB browser) holding SQLite's write lock until told on stdin.
_LOCKER = (
    "import sqlite3, sys\n"
    "conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)\n"
    "conn.execute('BEGIN IMMEDIATE')\n"
    "print('locked', flush=True)\n"
    "sys.stdin.readline()\n"
    "conn.execute('ROLLBACK')\n"
)


@asynccontextmanager
async def sqlite_write_lock(db_path: Path) -> AsyncIterator[None]:
    """Hold the write lock of a SQLite file from another process for the ``async with`` block."""
    locker = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _LOCKER, str(db_path), stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert locker.stdin is not None and locker.stdout is not None
    try:
        assert await asyncio.wait_for(locker.stdout.readline(), 60) == b"locked\n"
        yield
    finally:
        if locker.returncode is None:
            locker.stdin.write(b"release\n")
            await locker.stdin.drain()
        await asyncio.wait_for(locker.wait(), 60)
