"""Telegram HTML: escaping what came from outside, and fitting texts into Telegram's limits without
cutting a tag or an escape in half."""

from __future__ import annotations

import html
import re

MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024
SHOWN_CHARS = 60
_TAG = re.compile(r"<[^>]+>")


def shorten(text: str, limit: int) -> str:
    """Plain text cut to ``limit`` characters with an ellipsis; escape it after, never before."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def escape(text: object) -> str:
    return html.escape(str(text), quote=False)


def escape_short(text: object, limit: int) -> str:
    """Escaped HTML of at most ``limit`` characters: escaping can make a text five times longer."""
    plain = " ".join(str(text).split())
    escaped = escape(plain)
    while len(escaped) > limit:
        plain = plain[: max(len(plain) - (len(escaped) - limit) - 1, 0)]
        escaped = escape(plain) + "…"
    return escaped


def shown(text: str) -> str:
    """A source's string (a reason, a channel, a location) made safe for a message: shortened, escaped."""
    return escape_short(text, SHOWN_CHARS)


def plain_text(html_text: str) -> str:
    """A message's HTML as the terminal shows it: tags dropped, entities back to characters."""
    return html.unescape(_TAG.sub("", html_text))


def pack_lines(lines: list[str], limit: int = MESSAGE_LIMIT) -> list[str]:
    """Join self-contained HTML lines into as few messages as fit; an oversized line is split as text."""
    chunks: list[str] = []
    current = ""
    for line in lines:
        pieces = [line] if len(line) <= limit else _split_plain(line, limit)
        for piece in pieces:
            candidate = f"{current}\n{piece}" if current else piece
            if len(candidate) <= limit:
                current = candidate
            else:
                chunks.append(current)
                current = piece
    if current:
        chunks.append(current)
    return chunks


def _split_plain(line: str, limit: int) -> list[str]:
    # A line this long only comes from user data; drop its markup rather than risk broken HTML.
    plain = html.unescape(_strip_tags(line))
    parts: list[str] = []
    for start in range(0, len(plain), limit // 2):
        parts.append(escape(plain[start : start + limit // 2]))
    return parts


def _strip_tags(text: str) -> str:
    out, inside = [], False
    for char in text:
        if char == "<":
            inside = True
        elif char == ">" and inside:
            inside = False
        elif not inside:
            out.append(char)
    return "".join(out)
