"""full-text search: an FTS5 table on SQLite, tsvector documents on PostgreSQL, the indexer's progress

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # One row: the highest event id indexed. Starting at 0 makes the indexer backfill existing events.
    op.create_table(
        "search_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_event_id", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_search_state_single_row"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("INSERT INTO search_state (id, last_event_id) VALUES (1, 0)")
    if op.get_bind().dialect.name == "sqlite":
        # The FTS table keeps its own copy of the texts (rowid = events.id): snippet() needs the text, and
        # removing an anonymised event must not depend on the text it had.
        op.execute(
            "CREATE VIRTUAL TABLE search_fts USING fts5("
            "message, assistant_response, tokenize='unicode61 remove_diacritics 2')"
        )
        return
    op.create_table(
        "search_documents",
        sa.Column("event_row_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("document", postgresql.TSVECTOR(), nullable=False),
        sa.ForeignKeyConstraint(["event_row_id"], ["events.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("event_row_id"),
    )
    op.create_index("ix_search_documents_document", "search_documents", ["document"], postgresql_using="gin")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE search_fts")
    else:
        op.drop_index("ix_search_documents_document", table_name="search_documents")
        op.drop_table("search_documents")
    op.drop_table("search_state")
