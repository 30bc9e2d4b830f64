"""The key of the retention pseudonyms: ``retention.hash_secret`` when configured, else a random key kept
in a file outside the database, made the first time anonymisation needs it.

So retention runs with the default config (152-FZ: keep dialogs six months, then anonymise), and the
database alone never holds what reverses a pseudonym: someone with only the database file cannot test
a guessed phone against it. The file is ``retention.key_file``, by default next to the SQLite file
(``leadtrail.db`` → ``leadtrail.retention-key``; for PostgreSQL in the folder LeadTrail starts in), mode
0600. It must be backed up with the database: a new key gives the same person a new pseudonym.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from bot.settings import RetentionSettings, Settings

logger = logging.getLogger(__name__)

KEY_SUFFIX = ".retention-key"
DEFAULT_KEY_FILE = "leadtrail" + KEY_SUFFIX
MIN_KEY_CHARS = 16  # as for retention.hash_secret


class RetentionKeyError(Exception):
    """The key file cannot be read or made; the message names the file and fits on one line."""


@dataclass(frozen=True, slots=True)
class KeyFile:
    path: Path
    configured: bool  # retention.key_file was set (else the default place)


def key_file(settings: Settings) -> KeyFile:
    """Where the key lives when ``retention.hash_secret`` is not set."""
    if settings.retention.key_file:
        return KeyFile(Path(settings.retention.key_file).expanduser().resolve(), True)
    url = make_url(settings.database.url)
    database = url.database or ""
    if (
        url.get_backend_name() == "sqlite"
        and database not in ("", ":memory:")
        and not database.startswith("file:")
    ):
        path = Path(database).expanduser().resolve()
        return KeyFile(path.with_name(path.stem + KEY_SUFFIX), False)
    return KeyFile(Path(DEFAULT_KEY_FILE).resolve(), False)


def _read(path: Path) -> bytes:
    try:
        key = path.read_text(encoding="ascii").strip()
    except OSError as exc:
        raise RetentionKeyError(f"cannot read the retention key {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise RetentionKeyError(f"the retention key {path} is not text") from None
    if len(key) < MIN_KEY_CHARS:
        raise RetentionKeyError(f"the retention key {path} is shorter than {MIN_KEY_CHARS} characters")
    return key.encode()


def _make(path: Path) -> bytes | None:
    """A new random key in a new file (0600 from the start); None when another process made it first."""
    key = secrets.token_hex(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RetentionKeyError(f"cannot create the retention key {path}: {exc.strerror}") from None
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return None
    except OSError as exc:
        raise RetentionKeyError(f"cannot create the retention key {path}: {exc.strerror}") from None
    with os.fdopen(descriptor, "w", encoding="ascii") as file:
        file.write(key + "\n")
        file.flush()
        os.fsync(file.fileno())
    logger.warning(
        "retention: made a new anonymisation key in %s (retention.hash_secret is not set); back it up "
        "together with the database: with another key the same person gets another pseudonym",
        path,
    )
    return key.encode()


def retention_secret(settings: Settings, *, create: bool = True) -> bytes:
    """The key of the pseudonyms: the configured secret, else the key file's, made now if there is none.

    ``create=False`` (a dry run, which stores no pseudonym): no file is made; a throwaway key stands in.
    """
    retention: RetentionSettings = settings.retention
    if retention.hash_secret is not None:
        return retention.hash_secret.get_secret_value().encode()
    path = key_file(settings).path
    if path.exists():
        return _read(path)
    if not create:
        return secrets.token_hex(32).encode()
    return _make(path) or _read(path)
