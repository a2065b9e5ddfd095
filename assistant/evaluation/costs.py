"""Token use and an approximate cost per run.

PRICES are list prices in US dollars per million input and output tokens as published by the
providers (OpenAI, Google) in 2025; they change, differ by tier and region, and ignore discounts
(batch, cached input) and surcharges (long context). Treat the estimate as an order of magnitude.
A model not in the table has an unknown cost (None), never a guessed one.
"""

from __future__ import annotations

PRICES_PER_MILLION = {  # model: (input, output) USD per 1M tokens, approximate
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4-turbo": (10.00, 30.00),
    "gemini-2.5-pro": (1.25, 10.00),
    "gemini-2.5-flash": (0.30, 2.50),
    "gemini-2.0-flash": (0.10, 0.40),
    "gemini-1.5-pro": (1.25, 5.00),
    "gemini-1.5-flash": (0.075, 0.30),
}
FREE_BACKENDS = ("offline",)  # runs on this machine: no token charge


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
    name = model.lower().split("/")[-1]
    if name in PRICES_PER_MILLION:
        return PRICES_PER_MILLION[name]
    # dated snapshots such as gpt-4o-2024-08-06: the longest table name the model starts with
    prefixes = sorted((m for m in PRICES_PER_MILLION if name.startswith(m + "-")), key=len, reverse=True)
    return PRICES_PER_MILLION[prefixes[0]] if prefixes else None


def estimate_cost(backend: str, model: str | None, usage: dict) -> float | None:
    """Approximate USD for the tokens used; 0 for the offline backend; None when the price is unknown."""
    if backend in FREE_BACKENDS:
        return 0.0
    price = price_of(model)
    if price is None:
        return None
    return (usage.get("input_tokens", 0) * price[0] + usage.get("output_tokens", 0) * price[1]) / 1_000_000
