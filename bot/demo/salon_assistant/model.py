"""The language model the demo assistant pretends to call: what each call would cost in tokens.

The dialog is rule-based (``dialog.py``), but a real assistant spends tokens on every message: a cheap
model classifies the intent, a bigger one writes the answer with the salon's prompt and price list in
front of it. These pure functions give both calls token counts from the texts, so the demo's report shows
what such an assistant costs («Стоимость ИИ») priced the way LeadTrail prices any call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from reports.pricing import ModelPrice

CLASSIFIER, RESPONDER = "yandexgpt-lite", "yandexgpt-pro"
# Yandex Cloud's public prices per million tokens (synchronous mode, input and output alike, VAT in).
PRICES = (
    ModelPrice(model=CLASSIFIER, input_per_million=200, output_per_million=200),
    ModelPrice(model=RESPONDER, input_per_million=1200, output_per_million=1200),
)
CLASSIFIER_PROMPT_TOKENS = 180  # the list of intents and how to name them
RESPONDER_PROMPT_TOKENS = 650  # the salon's manner, services, prices, addresses and free slots
INTENT_TOKENS = 6
CHARACTERS_PER_TOKEN = 3  # Russian text, roughly, for YandexGPT's tokenizer


@dataclass(frozen=True, slots=True)
class ModelCall:
    model: str
    input_tokens: int
    output_tokens: int

    def fields(self) -> dict[str, Any]:
        return {"model": self.model, "input_tokens": self.input_tokens, "output_tokens": self.output_tokens}


def tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / CHARACTERS_PER_TOKEN))


def classification(message: str) -> ModelCall:
    """The intent of the client's message, by the cheap model."""
    return ModelCall(CLASSIFIER, CLASSIFIER_PROMPT_TOKENS + tokens(message), INTENT_TOKENS)


def reply(message: str, answer: str) -> ModelCall:
    """The answer to the client, by the bigger model."""
    return ModelCall(RESPONDER, RESPONDER_PROMPT_TOKENS + tokens(message), tokens(answer))
