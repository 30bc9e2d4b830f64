"""A throwaway PostgreSQL server for the tests, when CI has not already started one.

CI exports ``LEADTRAIL_TEST_POSTGRES_URL``; on a developer's machine the tests start their own cluster
from the machine's PostgreSQL binaries. If neither works the PostgreSQL tests fail: never a silent skip.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ENV_URL = "LEADTRAIL_TEST_POSTGRES_URL"


def _binaries() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    found = shutil.which("pg_ctl")
    if candidates:
        return Path(candidates[0]).parent
    if found:
        return Path(found).parent
    raise RuntimeError(
        f"PostgreSQL binaries not found: install postgresql (apt-get install postgresql-15) or set {ENV_URL}"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres_user(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@dataclass
class TemporaryPostgres:
    directory: Path
    port: int
    binaries: Path

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    @classmethod
    def start(cls) -> TemporaryPostgres:
        binaries = _binaries()
        directory = Path(tempfile.mkdtemp(prefix="leadtrail-pg-"))
        if os.geteuid() == 0:
            shutil.chown(directory, "postgres", "postgres")
        data = directory / "data"
        subprocess.run(
            _as_postgres_user(
                [str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8"]
            ),
            check=True,
            capture_output=True,
        )
        port = _free_port()
        options = (
            f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        )
        subprocess.run(
            _as_postgres_user(
                [
                    str(binaries / "pg_ctl"),
                    "-D",
                    str(data),
                    "-o",
                    options,
                    "-l",
                    str(directory / "log"),
                    "-w",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )
        server = cls(directory, port, binaries)
        server._wait_ready()
        return server

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"temporary PostgreSQL did not start; see {self.directory / 'log'}")

    def stop(self) -> None:
        subprocess.run(
            _as_postgres_user(
                [str(self.binaries / "pg_ctl"), "-D", str(self.directory / "data"), "-m", "fast", "stop"]
            ),
            capture_output=True,
        )
        shutil.rmtree(self.directory, ignore_errors=True)
