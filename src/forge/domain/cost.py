"""Fine-tuning cost, before anything is spent: billed tokens, OpenAI's default epochs, and a dated price table.

Billed tokens = Σ min(limit, tokens of example) × epochs, as OpenAI bills supervised fine-tuning. With epochs left
on "auto", OpenAI picks them from the example count (the cookbook "Data preparation and analysis for chat model
fine-tuning"): 3, raised so that examples × epochs reaches 100 (at most 25), lowered so that it stays within
25,000 (at least 1).
"""

from __future__ import annotations

import json
import tomllib
from datetime import date
from typing import Iterable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from forge.domain.errors import ConfigError

TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES = 100
MAX_TARGET_EXAMPLES = 25_000
MIN_DEFAULT_EPOCHS = 1
MAX_DEFAULT_EPOCHS = 25
DEFAULT_TOKEN_LIMIT = 16_385  # the smallest limit OpenAI documents for chat fine-tuning; safe for unknown models


class ModelPrice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    training_per_1m: float = Field(ge=0, description="USD per 1M trained tokens.")
    token_limit: int = Field(DEFAULT_TOKEN_LIMIT, ge=1, description="Most tokens of one example that are trained.")


class PriceTable(BaseModel):
    """Prices as of `as_of`; models are matched by exact name, then by the longest prefix."""

    model_config = ConfigDict(extra="forbid")

    as_of: date
    currency: str = "USD"
    source: str = ""
    models: dict[str, ModelPrice]

    def price(self, model: str) -> ModelPrice | None:
        bare = model.removeprefix("ft:").split(":")[0]
        if bare in self.models:
            return self.models[bare]
        prefixes = [name for name in self.models if bare.startswith(name)]
        return self.models[max(prefixes, key=len)] if prefixes else None


# OpenAI's published supervised fine-tuning prices (platform.openai.com/docs/pricing) on the date below. Azure
# OpenAI bills training per token at similar rates plus hosting per hour; put your contract's prices in a file
# and point FORGE_PRICE_TABLE at it (same shape as this table, TOML or JSON).
DEFAULT_PRICES = PriceTable(
    as_of=date(2025, 6, 1),
    source="OpenAI pricing page, fine-tuning (training) prices",
    models={
        "gpt-4.1-2025-04-14": ModelPrice(training_per_1m=25.0, token_limit=65_536),
        "gpt-4.1-mini-2025-04-14": ModelPrice(training_per_1m=5.0, token_limit=65_536),
        "gpt-4.1-nano-2025-04-14": ModelPrice(training_per_1m=1.5, token_limit=65_536),
        "gpt-4.1": ModelPrice(training_per_1m=25.0, token_limit=65_536),
        "gpt-4.1-mini": ModelPrice(training_per_1m=5.0, token_limit=65_536),
        "gpt-4.1-nano": ModelPrice(training_per_1m=1.5, token_limit=65_536),
        "gpt-4o-2024-08-06": ModelPrice(training_per_1m=25.0, token_limit=65_536),
        "gpt-4o-mini-2024-07-18": ModelPrice(training_per_1m=3.0, token_limit=65_536),
        "gpt-3.5-turbo": ModelPrice(training_per_1m=8.0, token_limit=16_385),
    },
)


class CostEstimate(BaseModel):
    """What a training run on a dataset would cost; JSON-able for jobs, the API and the CLI."""

    model: str
    examples: int
    epochs: int
    epochs_auto: bool
    dataset_tokens: int = Field(description="Σ min(limit, tokens) over the examples: one epoch's billed tokens.")
    billed_tokens: int
    token_limit: int
    truncated_examples: int = Field(description="Examples longer than the limit (billed only up to it).")
    price_per_1m: float | None
    cost: float | None = Field(description="None when the model has no price in the table.")
    currency: str
    prices_as_of: date


def default_epochs(n_examples: int) -> int:
    """OpenAI's `n_epochs="auto"`: 3, adjusted so that examples × epochs lands in [100, 25,000] where it can."""
    if n_examples <= 0:
        return TARGET_EPOCHS
    if n_examples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        return min(MAX_DEFAULT_EPOCHS, MIN_TARGET_EXAMPLES // n_examples)
    if n_examples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        return max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // n_examples)
    return TARGET_EPOCHS


def billed_tokens(example_tokens: Iterable[int], limit: int) -> tuple[int, int, int]:
    """(examples, Σ min(limit, tokens), examples over the limit) for one epoch."""
    count = total = over = 0
    for tokens in example_tokens:
        count += 1
        total += min(limit, tokens)
        over += tokens > limit
    return count, total, over


def token_limit(model: str, prices: PriceTable = DEFAULT_PRICES) -> int:
    """Most tokens of one example the model trains on (from the price table; a safe default otherwise)."""
    price = prices.price(model)
    return price.token_limit if price else DEFAULT_TOKEN_LIMIT


def estimate(
    example_tokens: Iterable[int],
    model: str,
    *,
    epochs: int | None = None,
    prices: PriceTable = DEFAULT_PRICES,
    limit: int | None = None,
) -> CostEstimate:
    """Billed tokens and cost of fine-tuning `model` on examples of these token lengths (epochs None = auto)."""
    limit = limit or token_limit(model, prices)
    count, per_epoch, over = billed_tokens(example_tokens, limit)
    return estimate_from_totals(count, per_epoch, over, model, epochs=epochs, prices=prices, limit=limit)


def estimate_from_totals(
    examples: int,
    dataset_tokens: int,
    over_limit: int,
    model: str,
    *,
    epochs: int | None = None,
    prices: PriceTable = DEFAULT_PRICES,
    limit: int | None = None,
) -> CostEstimate:
    """The same estimate from totals a stream already summed: examples, Σ min(limit, tokens), examples over it."""
    if epochs is not None and epochs < 1:
        raise ValueError("epochs must be at least 1")
    price = prices.price(model)
    chosen = epochs if epochs is not None else default_epochs(examples)
    billed = dataset_tokens * chosen
    return CostEstimate(
        model=model,
        examples=examples,
        epochs=chosen,
        epochs_auto=epochs is None,
        dataset_tokens=dataset_tokens,
        billed_tokens=billed,
        token_limit=limit or token_limit(model, prices),
        truncated_examples=over_limit,
        price_per_1m=price.training_per_1m if price else None,
        cost=round(billed / 1_000_000 * price.training_per_1m, 4) if price else None,
        currency=prices.currency,
        prices_as_of=prices.as_of,
    )


def parse_price_table(text: str, origin: str) -> PriceTable:
    """A price table from TOML or JSON text (`as_of`, `currency`, `[models."name"] training_per_1m, token_limit`)."""
    try:
        data = json.loads(text) if origin.endswith(".json") else tomllib.loads(text)
        return PriceTable.model_validate(data)
    except (ValueError, ValidationError) as exc:
        raise ConfigError(
            f"Price table {origin} is invalid: {exc}. It needs as_of (a date) and models.<name>.training_per_1m; "
            "fix it or unset FORGE_PRICE_TABLE to use the built-in prices."
        ) from None

