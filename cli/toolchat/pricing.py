"""What a run cost: usage times the model's price, from the table shipped in data/prices.json (with
its date) under the config file's `prices:`. A model whose price is not known has no cost: a
model id matches a row only exactly or with a date suffix (`claude-sonnet-4-20250514`), never by a
looser guess (a new `claude-sonnet-4-7` is not priced as `claude-sonnet-4`)."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from .errors import UsageError

# Multipliers of the input price, as Anthropic bills prompt caching.
CACHE_WRITE_5M, CACHE_WRITE_1H, CACHE_READ = 1.25, 2.0, 0.1
KEYS = ("input", "output", "cache_write", "cache_write_1h", "cache_read")
_DATED = re.compile(r"-(\d{8}|latest)$")


@lru_cache(maxsize=1)
def shipped() -> dict:
    """The price table of the package: {"date", "source", "models": {MODEL: {input, output}}}."""
    return json.loads((Path(__file__).with_name("data") / "prices.json").read_text(encoding="utf-8"))


def check_prices(value: Any, where: str) -> dict:
    """A `prices:` mapping {MODEL: {input, output, ...}} (USD per million tokens), checked."""
    if not isinstance(value, dict):
        raise UsageError(f"{where}: expected a mapping of model names to prices")
    out = {}
    for model, row in value.items():
        if not isinstance(row, dict) or not {"input", "output"} <= set(row):
            raise UsageError(f"{where}: {model}: give at least input and output (USD per million tokens)")
        for key, number in row.items():
            if key not in KEYS:
                raise UsageError(f"{where}: {model}: {key}: unknown (known: {', '.join(KEYS)})")
            if isinstance(number, bool) or not isinstance(number, (int, float)) or number < 0:
                raise UsageError(f"{where}: {model}: {key}: not a price")
        out[str(model)] = dict(row)
    return out


def price_of(model: str, overrides: Mapping[str, dict] | None = None) -> dict | None:
    """The model's prices per million tokens (cache prices filled in), or None when unknown."""
    table = {**shipped()["models"], **(overrides or {})}
    row = table.get(model)
    if row is None:
        base = _DATED.sub("", model)
        row = table.get(base) if base != model else None
    if row is None:
        return None
    full = {"input": float(row["input"]), "output": float(row["output"])}
    full["cache_write"] = float(row.get("cache_write", full["input"] * CACHE_WRITE_5M))
    full["cache_write_1h"] = float(row.get("cache_write_1h", full["input"] * CACHE_WRITE_1H))
    full["cache_read"] = float(row.get("cache_read", full["input"] * CACHE_READ))
    return full


def cost_usd(model: str, usage: Mapping[str, Any], overrides: Mapping[str, dict] | None = None) -> float | None:
    """What `usage` cost with the model's price, in US dollars; None when the price is not known."""
    price = price_of(model, overrides)
    if price is None:
        return None

    def n(value: Any) -> float:
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0

    written = n(usage.get("cache_creation_input_tokens"))
    by_ttl = usage.get("cache_creation")
    if not isinstance(by_ttl, dict):
        by_ttl = {}
    hour = min(written, n(by_ttl.get("ephemeral_1h_input_tokens")))
    total = (
        n(usage.get("input_tokens")) * price["input"]
        + n(usage.get("output_tokens")) * price["output"]
        + (written - hour) * price["cache_write"]
        + hour * price["cache_write_1h"]
        + n(usage.get("cache_read_input_tokens")) * price["cache_read"]
    )
    return round(total / 1_000_000, 6)
