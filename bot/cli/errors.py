"""How a command ends: its exit code, and the one line a user sees when it fails."""

from __future__ import annotations

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class CommandFailed(Exception):
    """A command could not do its job; the message is the one line the user sees."""
