"""Phone numbers as identities: one person is one phone, however a source wrote it.

Read by Google's libphonenumber rules (the ``phonenumbers`` package) instead of a hand-made pattern, which
took any five digits for a phone. Its own module, so the writer process links clients without importing
the event model (pydantic).
"""

from __future__ import annotations

from functools import lru_cache

import phonenumbers

DEFAULT_REGION = "RU"


@lru_cache(maxsize=65_536)  # the writer meets the same phones again and again; parsing costs ~20 µs
def normalize_phone(raw: str, region: str = DEFAULT_REGION) -> str | None:
    """E.164 (``+79175551234``) when ``raw`` is a possible number, read in ``region`` when it has no
    country code (``8 917…``, ``917…``); None when it is not a phone: impossible for its country, or a
    filler whose number after the country code is one digit repeated (``+7 999 999-99-99``)."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number) or len(set(str(number.national_number))) == 1:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
