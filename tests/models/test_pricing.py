"""Cost from the versioned price table."""

from __future__ import annotations

import pytest

from tether.core import Usage
from tether.models import (
    DEFAULT_PRICES,
    PRICE_TABLE_VERSION,
    CostEstimate,
    ModelPrice,
    PriceTable,
    cost,
)


def test_plain_input_and_output() -> None:
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    assert cost("openai", "gpt-4.1-mini", usage) == pytest.approx(0.40 + 1.60)


def test_cached_input_is_priced_apart() -> None:
    # 10,000 prompt tokens of which 8,000 came from the cache; 500 output tokens.
    usage = Usage(input_tokens=10_000, cache_read_tokens=8_000, output_tokens=500)
    expected = (2_000 * 0.40 + 8_000 * 0.10 + 500 * 1.60) / 1e6
    assert cost("openai", "gpt-4.1-mini", usage) == pytest.approx(expected)


def test_cache_writes_and_reads_on_anthropic() -> None:
    usage = Usage(
        input_tokens=412 + 1024 + 2048, cache_write_tokens=1024, cache_read_tokens=2048,
        output_tokens=71,
    )  # fmt: skip
    expected = (412 * 3.00 + 1024 * 3.75 + 2048 * 0.30 + 71 * 15.00) / 1e6
    assert cost("anthropic", "claude-sonnet-4-6", usage) == pytest.approx(expected)


def test_reasoning_tokens_can_have_their_own_price() -> None:
    table = PriceTable(
        version="test-1",
        prices={("acme", "thinker"): ModelPrice(input=1.0, output=4.0, reasoning=2.0)},
    )
    usage = Usage(input_tokens=1000, output_tokens=600, reasoning_tokens=500)
    expected = (1000 * 1.0 + 100 * 4.0 + 500 * 2.0) / 1e6
    assert table.cost("acme", "thinker", usage) == pytest.approx(expected)
    assert cost("acme", "thinker", usage, table=table) == pytest.approx(expected)


def test_reasoning_defaults_to_the_output_price() -> None:
    usage = Usage(
        input_tokens=2270, cache_read_tokens=2048, output_tokens=598, reasoning_tokens=576
    )
    expected = (222 * 1.10 + 2048 * 0.275 + 598 * 4.40) / 1e6
    assert cost("openai", "o4-mini", usage) == pytest.approx(expected)


def test_dated_snapshots_use_their_base_model() -> None:
    usage = Usage(input_tokens=1000, output_tokens=100)
    assert cost("openai", "gpt-4.1-mini-2025-04-14", usage) == cost("openai", "gpt-4.1-mini", usage)
    assert DEFAULT_PRICES.price_of("anthropic", "claude-haiku-4-5-20251001") is not None
    assert DEFAULT_PRICES.price_of("openai", "gpt-4.1-mini-high") is None


def test_local_and_scripted_cost_nothing() -> None:
    usage = Usage(input_tokens=10_000, output_tokens=10_000)
    assert cost("local", "SmolLM2-135M-Instruct.Q4_1", usage) == 0.0
    assert cost("scripted", "scripted", usage) == 0.0
    assert DEFAULT_PRICES.estimate("local", "x", usage) == CostEstimate(
        usd=0.0, known=True, table_version=PRICE_TABLE_VERSION
    )


def test_unknown_model_is_flagged_not_free() -> None:
    usage = Usage(input_tokens=1000, output_tokens=1000)
    assert cost("openai-compatible", "smollm2", usage) == 0.0
    estimate = DEFAULT_PRICES.estimate("openai", "gpt-9-ultra", usage)
    assert estimate == CostEstimate(usd=0.0, known=False, table_version=PRICE_TABLE_VERSION)


def test_the_table_is_versioned() -> None:
    assert PRICE_TABLE_VERSION == DEFAULT_PRICES.version == "2026-11-25"
