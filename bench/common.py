"""Helpers the benchmarks share: the real ``leadtrail run`` in its own process, its peak memory,
seed-shaped events, and a results table with targets.

The server always runs as a separate process started the way an operator starts it, so its figures
(rate, RSS, time to ready) are the product's, not the benchmark client's.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal, TypeVar

import aiohttp

from tests.processes import clean_env, process_tree

REPO_ROOT = Path(__file__).resolve().parent.parent
MB = 1_000_000
SEED_CLIENTS = 20_000
T = TypeVar("T")


def status_bytes(pid: int, field_name: str) -> int:
    """A memory figure of ``/proc/PID/status`` (VmRSS: resident now; VmHWM: its peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field_name} in /proc/{pid}/status")


def server_memory_bytes(pid: int, field_name: str = "VmHWM") -> int:
    """The server and its writer process together: what the machine has to have free for them.

    Summed peaks are an upper bound of the peak of the sum; for two processes that grow together, close.
    """
    return sum(status_bytes(member, field_name) for member in process_tree(pid))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def log_tail(path: Path, lines: int = 30) -> str:
    text = path.read_text(encoding="utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class RunningServer:
    process: asyncio.subprocess.Process
    url: str
    log_path: Path
    ready_seconds: float

    def log_tail(self) -> str:
        return log_tail(self.log_path)

    def peak_rss_bytes(self) -> int:
        """Of the server and its writer process (SQLite), summed."""
        return server_memory_bytes(self.process.pid)

    async def stop(self, grace_seconds: float = 120) -> int:
        """SIGTERM, as an operator's service manager sends it; returns the exit code."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), grace_seconds)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        assert self.process.returncode is not None
        return self.process.returncode


async def _wait_healthy(
    process: asyncio.subprocess.Process, url: str, log_path: Path, within_seconds: float
) -> None:
    deadline = time.monotonic() + within_seconds
    async with aiohttp.ClientSession() as http:
        while True:
            if process.returncode is not None:
                raise RuntimeError(f"leadtrail run exited with {process.returncode}:\n{log_tail(log_path)}")
            try:
                async with http.get(f"{url}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                late = f"leadtrail run did not answer /healthz within {within_seconds:.0f} s"
                raise RuntimeError(f"{late}:\n{log_tail(log_path)}")
            await asyncio.sleep(0.01)  # fine polling: "time to ready" is one of the figures


@asynccontextmanager
async def running_server(
    config_path: Path, port: int, log_path: Path, ready_within_seconds: float = 60
) -> AsyncIterator[RunningServer]:
    """``leadtrail run --config FILE`` until /healthz answers 200; killed on the way out if still alive.

    ``ready_seconds`` runs from just before the process is spawned, so it includes interpreter start-up,
    imports and migrations: what an operator waits for after a restart.
    """
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:  # noqa: ASYNC230 - opened once, before the child exists
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", "--config", str(config_path),
            stdout=log, stderr=log, env=clean_env(), cwd=REPO_ROOT,
        )  # fmt: skip
        try:
            await _wait_healthy(process, url, log_path, ready_within_seconds)
            yield RunningServer(process, url, log_path, time.perf_counter() - started)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()


# Seed-shaped events (design.md, "Event"): the seed's fields, Russian texts, Kazan coordinates.
STANDARD_EVENT_WEIGHTS = {
    "message_received": 34,
    "assistant_response": 34,
    "lead_created": 10,
    "appointment_booked": 8,
    "payment_status": 6,
    "no_show": 3,
    "refusal": 5,
}
_ACTION_BY_EVENT = {
    "message_received": "reply_sent",
    "assistant_response": "reply_sent",
    "lead_created": "lead_created",
    "appointment_booked": "booking_created",
    "payment_status": "payment_recorded",
    "no_show": "reminder_sent",
    "refusal": "dialog_closed",
}
# (client's message, intent, assistant's answer)
_DIALOGUES = (
    ("Здравствуйте, хочу записаться на стрижку", "booking.request",
     "Когда вам удобно? Сегодня в 18:00 свободно."),
    ("Сколько стоит окрашивание волос средней длины?", "price.question",
     "Окрашивание средней длины — от 3500 ₽, точная цена зависит от техники."),
    ("Можно перенести мою запись на завтра?", "booking.reschedule",
     "Конечно! Завтра свободно в 11:00 и в 15:30. Какое время подойдёт?"),
    ("Есть ли свободное время на маникюр в субботу?", "booking.request",
     "В субботу есть окно в 12:00 у мастера Алины. Записать вас?"),
    ("Хочу отменить запись, я заболела", "booking.cancel",
     "Поправляйтесь! Запись отменена. Напишите, когда захотите выбрать новое время."),
    ("Где вы находитесь? Есть ли парковка?", "location.question",
     "Мы на улице Баумана, 15. Парковка во дворе, въезд с Профсоюзной."),
    ("А скидка для студентов есть?", "discount.question",
     "Да, по студенческому билету скидка 10% на все услуги по будням."),
    ("Спасибо, до встречи!", "smalltalk.thanks", "Будем рады вас видеть! Хорошего дня."),
    ("Дорого, пожалуй, не буду записываться", "refusal.price",
     "Понимаю. У нас есть мастера-стажёры, у них цены ниже на 30%. Рассказать подробнее?"),
    ("Подскажите, оплатить можно картой?", "payment.question",
     "Да, принимаем карты, СБП и наличные."),
)  # fmt: skip
SEED_START = datetime(2025, 1, 1, tzinfo=timezone(timedelta(hours=3)))


def seed_events(
    total: int, *, run_tag: str, clients: int = SEED_CLIENTS, days: int = 90, seed: int = 2025
) -> Iterator[dict[str, Any]]:
    """A deterministic stream of ``total`` events, generated lazily so a million never sit in memory.

    The same arguments give the same events, so several consumers can insert "the same rows".
    Timestamps advance through ``days`` days with ±30 min of jitter, the order a live assistant produces;
    every client keeps one user_id/crm_id/lead_id, so no client merges happen; ``event_id``s are
    ``<run_tag>-<index>``, unique per run, so a reused PostgreSQL database sees no duplicates.
    """
    rng = random.Random(seed)
    names, weights = list(STANDARD_EVENT_WEIGHTS), list(STANDARD_EVENT_WEIGHTS.values())
    step = timedelta(days=days) / max(total, 1)
    for index in range(total):
        client = rng.randrange(clients)
        kind = rng.choices(names, weights)[0]
        message, intent, answer = _DIALOGUES[rng.randrange(len(_DIALOGUES))]
        moment = SEED_START + step * index + timedelta(seconds=rng.uniform(-1800, 1800))
        event: dict[str, Any] = {
            "timestamp": moment.isoformat(timespec="milliseconds"),
            "channel": "telegram",
            "user_id": f"tg_{client}",
            "crm_id": f"BX_{client}",
            "event": kind,
            "message": message,
            "assistant_response": answer,
            "intent": intent,
            "confidence": round(rng.uniform(0.5, 0.99), 2),
            "action": _ACTION_BY_EVENT[kind],
            "lat": f"{55.70 + rng.random() * 0.15:.4f}",
            "lon": f"{49.00 + rng.random() * 0.25:.4f}",
            "event_id": f"{run_tag}-{index:08d}",
        }
        if client % 3 == 0:
            event["lead_id"] = f"lead_2025_{client:05d}"
        yield event


def batched(items: Iterator[T], size: int) -> Iterator[list[T]]:
    """``itertools.batched`` (Python 3.12+) for 3.11, as lists."""
    while batch := list(itertools.islice(items, size)):
        yield batch


@dataclass(frozen=True)
class Target:
    op: Literal[">=", "<="]
    bound: float

    def met(self, value: float) -> bool:
        return value >= self.bound if self.op == ">=" else value <= self.bound


@dataclass(frozen=True)
class Figure:
    label: str
    value: float
    unit: str = ""
    decimals: int = 0
    target: Target | None = None

    def show(self, number: float) -> str:
        text = f"{number:,.{self.decimals}f}"
        return f"{text} {self.unit}" if self.unit else text


def print_table(title: str, figures: list[Figure]) -> None:
    """One line per figure: value, target and PASS/MISS (targets are reported, never asserted)."""
    rows = [("figure", "value", "target", "")]
    for figure in figures:
        if figure.target is None:
            rows.append((figure.label, figure.show(figure.value), "", ""))
        else:
            target = f"{'≥' if figure.target.op == '>=' else '≤'} {figure.show(figure.target.bound)}"
            verdict = "PASS" if figure.target.met(figure.value) else "MISS"
            rows.append((figure.label, figure.show(figure.value), target, verdict))
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    print(title)
    for label, value, target, verdict in rows:
        print(f"  {label:<{widths[0]}}  {value:>{widths[1]}}  {target:>{widths[2]}}  {verdict}".rstrip())
