"""/search: matching clients with a snippet each."""

from __future__ import annotations

from datetime import tzinfo

from reports.texts.client import NO_NAME
from reports.texts.html import escape_short
from reports.texts.numbers import format_local
from storage.search import SearchHit

QUERY_PREVIEW = 100
NAME_PREVIEW = 60
SNIPPET_PREVIEW = 220  # ten of them, the names and the header stay well within one message

USAGE = (
    "Что найти в переписке? Например: <code>/search стрижка вечером</code> — покажу клиентов, "
    "в чьих сообщениях или ответах ассистента есть все эти слова."
)
NOT_FOUND_TEMPLATE = "По запросу «{query}» ничего не нашлось. Попробуйте другие слова или только их начало."
FOUND = "🔎 «{query}» — клиентов: {count}, свежие совпадения сверху:"
MORE = "Показаны первые {count}. Уточните запрос, чтобы увидеть остальных."


def title(hit: SearchHit) -> str:
    """The client's name, or "Без имени · #12" (plain text)."""
    return hit.name or f"{NO_NAME} · #{hit.client_id}"


def not_found(query: str) -> str:
    return NOT_FOUND_TEMPLATE.format(query=escape_short(query, QUERY_PREVIEW))


def hits(query: str, found: list[SearchHit], more: bool, zone: tzinfo) -> str:
    lines = [FOUND.format(query=escape_short(query, QUERY_PREVIEW), count=len(found))]
    for number, hit in enumerate(found, 1):
        lines.append(
            f"\n{number}. <b>{escape_short(title(hit), NAME_PREVIEW)}</b> · {format_local(hit.ts, zone)}"
            f"\n«{escape_short(hit.snippet, SNIPPET_PREVIEW)}»"
        )
    if more:
        lines.append("\n" + MORE.format(count=len(found)))
    return "\n".join(lines)
