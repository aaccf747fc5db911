"""What a model call costs, from a versioned price table.

Token accounting follows one convention across providers (the providers normalize
their usage to it, see ``docs/models.md``):

- ``Usage.input_tokens`` counts *every* prompt token, including those read from the
  prompt cache (``cache_read_tokens``) and those written to it (``cache_write_tokens``);
- ``Usage.output_tokens`` counts every generated token, including hidden reasoning
  tokens (``reasoning_tokens``).

So a call is priced as

``(input - cache_read - cache_write) * input + cache_read * cached_input
+ cache_write * cache_write + (output - reasoning) * output + reasoning * reasoning``

with all prices in USD per million tokens. Each run journals the table's
``version`` next to the cost, so a cost can be recomputed later with the same table
(or re-priced with a newer one).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..core import Usage

#: Providers whose calls never cost money: they run on the caller's own hardware or
#: are test doubles.
FREE_PROVIDERS: frozenset[str] = frozenset({"local", "scripted"})

_DATED_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|latest)$")


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelPrice:
    """Prices of one model in USD per million tokens.

    ``cached_input`` and ``cache_write`` default to ``input`` and ``reasoning`` to
    ``output`` when a provider does not price them separately.
    """

    input: float
    output: float
    cached_input: float | None = None
    cache_write: float | None = None
    reasoning: float | None = None

    def cost(self, usage: Usage) -> float:
        """USD cost of ``usage`` at these prices."""
        cached_input = self.input if self.cached_input is None else self.cached_input
        cache_write = self.input if self.cache_write is None else self.cache_write
        reasoning = self.output if self.reasoning is None else self.reasoning
        cached = usage.cache_read_tokens + usage.cache_write_tokens
        plain_input = max(0, usage.input_tokens - cached)
        plain_output = max(0, usage.output_tokens - usage.reasoning_tokens)
        micro_usd = (
            plain_input * self.input
            + usage.cache_read_tokens * cached_input
            + usage.cache_write_tokens * cache_write
            + plain_output * self.output
            + usage.reasoning_tokens * reasoning
        )
        return micro_usd / 1_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class CostEstimate:
    """A cost together with how it was obtained.

    ``known`` is ``False`` when the table has no price for the model: ``usd`` is then
    ``0.0`` and should be read as "not priced", not as "free".
    """

    usd: float
    known: bool
    table_version: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PriceTable:
    """Prices per ``(provider, model)``, with a version that runs record.

    Model names are matched exactly first, then with a dated snapshot suffix removed
    (``gpt-4.1-mini-2025-04-14`` is priced as ``gpt-4.1-mini``,
    ``claude-sonnet-4-5-20250929`` as ``claude-sonnet-4-5``).
    """

    version: str
    prices: Mapping[tuple[str, str], ModelPrice] = field(default_factory=dict)

    def price_of(self, provider: str, model: str) -> ModelPrice | None:
        """The prices of ``model`` at ``provider``, or ``None`` if the table has none."""
        price = self.prices.get((provider, model))
        if price is None:
            base = _DATED_SUFFIX.sub("", model)
            if base != model:
                price = self.prices.get((provider, base))
        return price

    def estimate(self, provider: str, model: str, usage: Usage) -> CostEstimate:
        """The cost of one call (or a sum of calls) to one model, with a ``known`` flag."""
        if provider in FREE_PROVIDERS:
            return CostEstimate(usd=0.0, known=True, table_version=self.version)
        price = self.price_of(provider, model)
        if price is None:
            return CostEstimate(usd=0.0, known=False, table_version=self.version)
        return CostEstimate(usd=price.cost(usage), known=True, table_version=self.version)

    def cost(self, provider: str, model: str, usage: Usage) -> float:
        """USD cost of ``usage``; ``0.0`` for free providers and for unknown models."""
        return self.estimate(provider, model, usage).usd


def _p(
    input: float, output: float, *, cached: float | None = None, write: float | None = None
) -> ModelPrice:
    return ModelPrice(input=input, output=output, cached_input=cached, cache_write=write)


#: The default table: standard (not batch or priority) prices in USD per million
#: tokens, compiled on the date of its version from the providers' pricing pages
#: (https://developers.openai.com/api/docs/pricing,
#: https://platform.claude.com/docs/en/about-claude/pricing) as last seen, not
#: fetched live; only models whose prices two sources agreed on are listed, and any
#: other model is "not priced" (``known=False``). Not modelled: batch and priority
#: tiers, long-context surcharges, 1-hour cache writes (priced at the 5-minute rate).
#: Both providers bill reasoning/thinking tokens at the output price and OpenAI does
#: not bill cache writes apart, so those columns keep their defaults.
DEFAULT_PRICES = PriceTable(
    version="2026-11-25",
    prices={
        # OpenAI
        ("openai", "gpt-5"): _p(1.25, 10.00, cached=0.125),
        ("openai", "gpt-5-mini"): _p(0.25, 2.00, cached=0.025),
        ("openai", "gpt-5-nano"): _p(0.05, 0.40, cached=0.005),
        ("openai", "gpt-4.1"): _p(2.00, 8.00, cached=0.50),
        ("openai", "gpt-4.1-mini"): _p(0.40, 1.60, cached=0.10),
        ("openai", "gpt-4.1-nano"): _p(0.10, 0.40, cached=0.025),
        ("openai", "gpt-4o"): _p(2.50, 10.00, cached=1.25),
        ("openai", "gpt-4o-mini"): _p(0.15, 0.60, cached=0.075),
        ("openai", "o3"): _p(2.00, 8.00, cached=0.50),
        ("openai", "o4-mini"): _p(1.10, 4.40, cached=0.275),
        # Anthropic
        ("anthropic", "claude-fable-5"): _p(10.00, 50.00, cached=1.00, write=12.50),
        ("anthropic", "claude-opus-5"): _p(5.00, 25.00, cached=0.50, write=6.25),
        ("anthropic", "claude-opus-4-8"): _p(5.00, 25.00, cached=0.50, write=6.25),
        ("anthropic", "claude-opus-4-7"): _p(5.00, 25.00, cached=0.50, write=6.25),
        ("anthropic", "claude-opus-4-6"): _p(5.00, 25.00, cached=0.50, write=6.25),
        ("anthropic", "claude-opus-4-5"): _p(5.00, 25.00, cached=0.50, write=6.25),
        ("anthropic", "claude-opus-4-1"): _p(15.00, 75.00, cached=1.50, write=18.75),
        ("anthropic", "claude-sonnet-4-6"): _p(3.00, 15.00, cached=0.30, write=3.75),
        ("anthropic", "claude-sonnet-4-5"): _p(3.00, 15.00, cached=0.30, write=3.75),
        ("anthropic", "claude-haiku-4-5"): _p(1.00, 5.00, cached=0.10, write=1.25),
    },
)

#: The version of :data:`DEFAULT_PRICES`, journaled with every run's cost.
PRICE_TABLE_VERSION = DEFAULT_PRICES.version


def cost(provider: str, model: str, usage: Usage, *, table: PriceTable = DEFAULT_PRICES) -> float:
    """USD cost of ``usage`` on ``model`` at ``provider``.

    Local and scripted models cost ``0.0``. A model missing from ``table`` also gives
    ``0.0``; use :meth:`PriceTable.estimate` to tell the two apart.

    Args:
        provider: The provider name, as in ``Model.provider`` (``openai``, ``anthropic``...).
        model: The model name, as asked for or as reported by the provider.
        usage: The token counts of the call.
        table: The price table to use; the default is :data:`DEFAULT_PRICES`.
    """
    return table.cost(provider, model, usage)
