"""Token use and an approximate cost per run.

Prices are list prices in US dollars per million input and output tokens, declared by each backend
(`Backend.prices`, as the providers published them in 2025); they change, differ by tier and
region, and ignore discounts (batch, cached input) and surcharges (long context). Treat the
estimate as an order of magnitude. A model not in any backend's table has an unknown cost (None),
never a guessed one; a backend that does not cost money (`Backend.costs_money`) costs 0.
"""

from __future__ import annotations

from assistant.backends.registry import costs_money, price_table


def add_usage(total: dict, usage: dict | None) -> dict:
    """Sum token counts (input_tokens, output_tokens, ...) into `total`."""
    for key, value in (usage or {}).items():
        if isinstance(value, (int, float)):
            total[key] = total.get(key, 0) + value
    return total


def price_of(model: str | None) -> tuple[float, float] | None:
    """(input, output) USD per 1M tokens for a model name, or None when it is not in the table."""
    if not model:
        return None
    prices = price_table()
    name = model.lower().split("/")[-1]
    if name in prices:
        return prices[name]
    # dated snapshots such as gpt-4o-2024-08-06: the longest table name the model starts with
    prefixes = sorted((m for m in prices if name.startswith(m + "-")), key=len, reverse=True)
    return prices[prefixes[0]] if prefixes else None


def estimate_cost(backend: str, model: str | None, usage: dict) -> float | None:
    """Approximate USD for the tokens used; 0 for a backend that costs nothing; None when the price is unknown."""
    if not costs_money(backend):
        return 0.0
    price = price_of(model)
    if price is None:
        return None
    return (usage.get("input_tokens", 0) * price[0] + usage.get("output_tokens", 0) * price[1]) / 1_000_000
