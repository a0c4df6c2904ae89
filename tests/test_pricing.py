"""The price table: shipped defaults, model-name matching, config overrides, file:line errors."""

from __future__ import annotations

import pytest

from cacheops.config import load_config
from cacheops.errors import ConfigError
from cacheops.pricing import cost, load_prices, shipped_prices


def test_shipped_table_names_its_date_and_the_three_providers():
    table = shipped_prices()
    assert table.taken and table.currency == "USD" and table.per_tokens == 1_000_000
    assert {p.provider for p in table.models.values()} >= {"openai", "anthropic", "google"}


@pytest.mark.parametrize(
    "model, expected",
    [
        ("gpt-4o", "gpt-4o"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),  # the longest name wins
        ("openai/gpt-4o-mini", "gpt-4o-mini"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("models/gemini-2.5-flash", "gemini-2.5-flash"),
        ("GPT-4O", "gpt-4o"),
    ],
)
def test_model_names_match_their_price(model, expected):
    table = shipped_prices()
    assert table.price_of(model) is table.models[expected]


def test_cost_is_tokens_times_price_and_none_for_unknown_models():
    table = shipped_prices()
    price = table.models["gpt-4o-mini"]
    assert cost("gpt-4o-mini", 2_000_000, 1_000_000, table) == pytest.approx(2 * price.input + price.output)
    assert cost("fake-model-x", 10, 10, table) is None
    assert cost(None, 10, 10, table) is None


def test_config_overrides_and_adds_models(tmp_path, monkeypatch):
    path = tmp_path / "config.yaml"
    path.write_text("prices:\n  gpt-4o: {input: 1, output: 2}\n  my-local-model: {input: 0.5, output: 0.5}\n")
    monkeypatch.setenv("CACHEOPS_CONFIG", str(path))
    table = load_prices(load_config())
    assert table.cost("gpt-4o", 1_000_000, 1_000_000) == pytest.approx(3.0)
    assert table.cost("my-local-model", 2_000_000, 0) == pytest.approx(1.0)
    assert table.cost("gpt-4o-mini", 1_000_000, 0) == shipped_prices().models["gpt-4o-mini"].input


def test_a_bad_price_names_the_field(tmp_path, monkeypatch):
    path = tmp_path / "config.yaml"
    path.write_text("prices:\n  gpt-4o: {input: -1, output: 2}\n")
    monkeypatch.setenv("CACHEOPS_CONFIG", str(path))
    with pytest.raises(ConfigError, match="prices.gpt-4o.input"):
        load_config()
