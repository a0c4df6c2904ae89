"""The price table: tokens a cache hit saved -> money.

The shipped defaults (prices.yaml, beside this module) say the date they were taken; the config
file's `prices:` section overrides or adds models (same shape: input and output price per
`per_tokens` tokens). Matching: exact name, then the longest listed name the model starts with,
after dropping a provider prefix ("openai/gpt-4o" -> gpt-4o).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from .config import Config, ModelPrice, load_config
from .yamlfile import load_yaml_model

SHIPPED = Path(__file__).with_name("prices.yaml")
_PROVIDER_PREFIXES = ("openai/", "anthropic/", "google/", "gemini/", "vertex_ai/", "models/", "azure/", "bedrock/")


class PriceTable(BaseModel):
    model_config = ConfigDict(extra="forbid")
    taken: str  # the date the prices were read off the providers' pages
    currency: str = "USD"
    per_tokens: int = Field(1_000_000, gt=0)
    models: dict[str, ModelPrice] = {}

    def price_of(self, model: str | None) -> ModelPrice | None:
        """The price entry for `model`, or None when the table does not know it."""
        if not model:
            return None
        name = model.strip().lower()
        for prefix in _PROVIDER_PREFIXES:
            if name.startswith(prefix):
                name = name[len(prefix) :]
                break
        found = self.models.get(name)
        if found is not None:
            return found
        best = max((known for known in self.models if name.startswith(known)), key=len, default=None)
        return self.models[best] if best else None

    def cost(self, model: str | None, input_tokens: int, output_tokens: int) -> float | None:
        """Money `input_tokens` + `output_tokens` of `model` cost at list price (None: unknown model)."""
        price = self.price_of(model)
        if price is None:
            return None
        return (input_tokens * price.input + output_tokens * price.output) / self.per_tokens


@lru_cache(maxsize=1)
def shipped_prices() -> PriceTable:
    return load_yaml_model(SHIPPED, PriceTable)


def load_prices(config: Config | None = None) -> PriceTable:
    """The shipped table with the config file's `prices:` entries laid over it."""
    config = config if config is not None else load_config()
    table = shipped_prices()
    if not config.prices:
        return table
    models = dict(table.models)
    models.update({name.lower(): price for name, price in config.prices.items()})
    return table.model_copy(update={"models": models})


def cost(model: str | None, input_tokens: int, output_tokens: int, table: PriceTable | None = None) -> float | None:
    """What `input_tokens` + `output_tokens` of `model` cost, in the table's currency; None when the
    model is not in the table (shipped defaults + config overrides)."""
    return (table or load_prices()).cost(model, input_tokens, output_tokens)
