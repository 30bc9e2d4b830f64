"""What a model call costs: the owner's price list (``[[ai.prices]]``) applied to a call's tokens.

Pure: the table is plain values, so the ingest path prices every event the same way whichever source
sent it, and ``leadtrail doctor`` can say which models the list misses. A call is priced once, when it is
stored, with the price of its own day: a price that changes later does not rewrite the past.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, tzinfo
from fnmatch import fnmatchcase

from pydantic import BaseModel, ConfigDict, Field

from storage.event_row import EventRow

PER_MILLION = 1_000_000
# Money is kept to a millionth of the currency unit: a sum of float costs would otherwise read 12.479999….
MONEY_DIGITS = 6
_GLOB_CHARACTERS = frozenset("*?[")


class ModelPrice(BaseModel):
    """One ``[[ai.prices]]`` entry: a model's name (or a glob such as ``gpt://*/yandexgpt/*``) and its
    price per million tokens; cached input tokens at their own price when the provider bills them apart
    (GigaChat does not bill them: 0), and ``since`` the first day (local) the price applies to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(min_length=1, max_length=256)
    input_per_million: float = Field(ge=0)
    output_per_million: float = Field(ge=0)
    cached_input_per_million: float | None = Field(default=None, ge=0)
    since: date | None = None

    @property
    def is_glob(self) -> bool:
        return not _GLOB_CHARACTERS.isdisjoint(self.model)

    def matches(self, model: str) -> bool:
        """Names are compared ignoring case: an owner writes ``gigachat-2-pro`` for ``GigaChat-2-Pro``."""
        if self.is_glob:
            return fnmatchcase(model.casefold(), self.model.casefold())
        return model.casefold() == self.model.casefold()

    def cost(self, input_tokens: int | None, output_tokens: int | None, cached_tokens: int | None) -> float:
        """Input tokens include the cached ones (OpenTelemetry's convention, and the providers' usage)."""
        given_input = input_tokens or 0
        cached = min(cached_tokens or 0, given_input)
        cached_price = (
            self.input_per_million
            if self.cached_input_per_million is None
            else (self.cached_input_per_million)
        )
        total = (
            (given_input - cached) * self.input_per_million
            + cached * cached_price
            + (output_tokens or 0) * self.output_per_million
        )
        return round(total / PER_MILLION, MONEY_DIGITS)


@dataclass(frozen=True)
class PriceTable:
    """The price list in one currency (``ai.currency``), in the order the owner wrote it."""

    currency: str
    prices: tuple[ModelPrice, ...] = ()
    # Every call of a model on a day has the same price: found once (the list never changes).
    _found: dict[tuple[str, date], ModelPrice | None] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def price_for(self, model: str, day: date) -> ModelPrice | None:
        """Exact names before globs; of those, the one with the latest ``since`` on or before ``day`` (no
        ``since``: always); the first listed wins a tie."""
        key = (model, day)
        if key not in self._found:
            self._found[key] = self._look_up(model, day)
        return self._found[key]

    def _look_up(self, model: str, day: date) -> ModelPrice | None:
        for exact in (True, False):
            applicable = [
                price
                for price in self.prices
                if price.is_glob is not exact
                and price.matches(model)
                and (price.since is None or price.since <= day)
            ]
            if applicable:
                return max(applicable, key=lambda price: price.since or date.min)
        return None

    def knows(self, model: str) -> bool:
        """Whether any entry names this model, whatever its ``since``."""
        return any(price.matches(model) for price in self.prices)


def apply_prices(row: EventRow, table: PriceTable, zone: tzinfo) -> None:
    """Price a model call that came without a cost, on its local day; a cost of the source's own is kept.

    A call without token counts, or of a model the list does not name, stays without a cost: the report
    counts its tokens and lists its model as unpriced. A cost without a currency is in ``table.currency``.
    """
    model = row["model"]
    if row["cost"] is None and model is not None:
        tokens = (row["input_tokens"], row["output_tokens"], row["cached_tokens"])
        if tokens[0] is not None or tokens[1] is not None:
            price = table.price_for(model, row["ts"].astimezone(zone).date())
            if price is not None:
                row["cost"] = price.cost(*tokens)
    if row["cost"] is not None and row["currency"] is None:
        row["currency"] = table.currency
