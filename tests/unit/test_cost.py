"""Cost: OpenAI's default epochs, billed tokens capped per example, prices from a dated table or a file."""

from datetime import date

import pytest

from forge.domain import cost
from forge.domain.errors import ConfigError


@pytest.mark.parametrize("examples, epochs", [
    (1, 25), (4, 25), (5, 20), (10, 10), (33, 3), (34, 3), (8333, 3), (8334, 2), (12_500, 2), (12_501, 1),
    (100_000, 1),
])
def test_default_epochs_follow_openais_heuristic(examples, epochs):
    assert cost.default_epochs(examples) == epochs


def test_billed_tokens_cap_each_example_at_the_limit_and_multiply_by_epochs():
    estimate = cost.estimate([100, 200, 70_000], "gpt-4.1-mini-2025-04-14", epochs=2)
    assert estimate.token_limit == 65_536
    assert estimate.dataset_tokens == 100 + 200 + 65_536
    assert estimate.billed_tokens == 2 * (100 + 200 + 65_536)
    assert estimate.truncated_examples == 1
    assert estimate.cost == pytest.approx(estimate.billed_tokens / 1e6 * 5.0, abs=1e-4)
    assert estimate.prices_as_of == cost.DEFAULT_PRICES.as_of


def test_auto_epochs_come_from_the_example_count():
    estimate = cost.estimate([50] * 20, "gpt-4o-mini-2024-07-18")
    assert (estimate.epochs, estimate.epochs_auto, estimate.billed_tokens) == (5, True, 20 * 50 * 5)


def test_a_model_without_a_price_has_tokens_but_no_cost():
    estimate = cost.estimate([10] * 10, "Qwen/Qwen2.5-0.5B-Instruct")
    assert estimate.cost is None and estimate.billed_tokens == 10 * 10 * 10
    assert estimate.token_limit == cost.DEFAULT_TOKEN_LIMIT


def test_a_fine_tuned_model_name_is_priced_as_its_base():
    assert cost.DEFAULT_PRICES.price("ft:gpt-4.1-mini-2025-04-14:acme::abc").training_per_1m == 5.0


def test_a_price_table_file_overrides_the_built_in_one():
    table = cost.parse_price_table(
        'as_of = 2026-01-31\ncurrency = "EUR"\n[models."gpt-4.1-mini"]\ntraining_per_1m = 4.0\ntoken_limit = 1000\n',
        "prices.toml",
    )
    estimate = cost.estimate([1500, 500], "gpt-4.1-mini-2025-04-14", epochs=1, prices=table)
    assert (estimate.dataset_tokens, estimate.cost, estimate.currency) == (1500, 0.006, "EUR")
    assert table.as_of == date(2026, 1, 31)


def test_a_broken_price_table_says_what_it_needs():
    with pytest.raises(ConfigError, match="as_of"):
        cost.parse_price_table('{"models": {}}', "prices.json")
