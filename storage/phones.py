"""Phone numbers as identities: one person is one phone, however a source wrote it.

Its own module, so the writer process links clients without importing the event model (pydantic).
"""

from __future__ import annotations

import re

_PHONE_JUNK = re.compile(r"[^\d]")


def normalize_phone(raw: str) -> str | None:
    """Digits only, Russian 8XXXXXXXXXX and 10-digit forms as 7XXXXXXXXXX, so one person is one phone."""
    digits = _PHONE_JUNK.sub("", raw)
    if len(digits) == 11 and digits.startswith("8"):
        digits = "7" + digits[1:]
    elif len(digits) == 10 and digits.startswith("9"):
        digits = "7" + digits
    return digits if len(digits) >= 5 else None
