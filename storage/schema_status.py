"""Where a database's schema stands against this version's migrations, read without changing anything.

``leadtrail doctor`` asks this; ``storage.database.migrate`` is what moves the schema (on ``leadtrail run``).
"""

from __future__ import annotations

from dataclasses import dataclass

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from storage.database import MIGRATIONS_DIR


@dataclass(frozen=True)
class SchemaStatus:
    current: str | None
    head: str | None
    known: bool
    """False when the database carries a revision this version does not have (it was made by a newer one)."""

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def _scripts() -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config)


def _status(connection: Connection) -> SchemaStatus:
    scripts = _scripts()
    current = MigrationContext.configure(connection).get_current_revision()
    known = current is None or any(script.revision == current for script in scripts.walk_revisions())
    return SchemaStatus(current, scripts.get_current_head(), known)


async def schema_status(url: str, connect_timeout: float = 10.0) -> SchemaStatus:
    """Connect once (no pool, no pragmas, no migration) and compare the stored revision with the head.

    Raises whatever the driver raises when the database cannot be reached (``SQLAlchemyError``, ``OSError``).
    """
    engine = create_async_engine(url, poolclass=NullPool, connect_args={"timeout": connect_timeout})
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_status)
    finally:
        await engine.dispose()
