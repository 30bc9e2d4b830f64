"""Keeping what senders put on the wire out of the log (issue 7, item 10).

aiohttp logs a request it cannot parse with the offending header line quoted in the exception, e.g.
``Authorization: Bearer <token>`` followed by one bad byte: a near-complete secret in the log. The filter
keeps the fact and the exception's class, and drops its text and traceback.
"""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError

_SERVER_LOGGER = "aiohttp.server"


class UnparsableRequestFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            record.msg = "unparsable HTTP request refused with 400 (%s)"
            record.args = (type(error).__name__,)
            record.exc_info = None
            record.exc_text = None
        return True


def scrub_http_server_log() -> None:
    """Install the filter once on aiohttp's server logger."""
    logger = logging.getLogger(_SERVER_LOGGER)
    if not any(isinstance(existing, UnparsableRequestFilter) for existing in logger.filters):
        logger.addFilter(UnparsableRequestFilter())
