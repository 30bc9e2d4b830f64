"""``INSERT … ON CONFLICT DO NOTHING`` for whichever backend the connection speaks."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection


def insert_ignoring_conflicts(
    conn: Connection | AsyncConnection, model: Any, index_elements: list[str]
) -> Any:
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    return dialect_insert(model).on_conflict_do_nothing(index_elements=index_elements)
