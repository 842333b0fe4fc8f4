"""What a million output tokens costs at a measured throughput.

Prices in :data:`PRICES` are illustrative and meant to be edited.
"""

from __future__ import annotations

import math

import pandas as pd

from evalkit.errors import ConfigError
from evalkit.perf.analysis import Capacity
from evalkit.plan.hardware import hardware_table

#: Illustrative hourly prices (USD, on-demand, one machine of data/hardware.yaml, mid-2025 list prices rounded).
#: They vary by provider, region and commitment: edit them (``PRICES.loc["L4", "usd_per_hour"] = 0.85``), edit
#: data/hardware.yaml, or pass your own.
PRICES = pd.DataFrame(
    [(row.name, row.description, row.usd_per_hour, row.example) for row in hardware_table().values()
     if row.usd_per_hour is not None],
    columns=["accelerator", "description", "usd_per_hour", "example"],
).set_index("accelerator")
PRICES["basis"] = "illustrative, not a quote: edit"
PRICES.attrs["caption"] = "Illustrative hourly prices (USD); edit them to match what you pay."


def hourly_price(price_per_hour: float | None = None, accelerator: str | None = None,
                 prices: pd.DataFrame | None = None) -> tuple[float, str]:
    """An hourly price and where it came from: given directly, or looked up in ``prices`` (default PRICES)."""
    if price_per_hour is not None:
        if not price_per_hour > 0:
            raise ConfigError(f"price_per_hour={price_per_hour} must be > 0.", fix="give the hourly price in USD.")
        return float(price_per_hour), "given price"
    if accelerator is None:
        raise ConfigError("No price to compute a cost from.",
                          fix=f"pass price_per_hour=... or accelerator= one of {', '.join(PRICES.index)}.")
    table = PRICES if prices is None else prices
    if accelerator not in table.index:
        raise ConfigError(f"Accelerator {accelerator!r} is not in the price table.",
                          fix=f"use one of {', '.join(table.index)}, or add a row to the table.")
    return float(table.loc[accelerator, "usd_per_hour"]), f"{accelerator} from the price table (illustrative)"


def cost_per_million_output_tokens(output_tokens_per_s: float, price_per_hour: float | None = None, *,
                                   accelerator: str | None = None, prices: pd.DataFrame | None = None) -> float:
    """USD per million output tokens for a machine that costs ``price_per_hour`` and sustains this throughput.

    cost = price_per_hour / (output_tokens_per_s * 3600) * 1e6. It assumes the machine is paid for every hour
    and kept at this load; idle hours make real tokens dearer.

    Raises:
        ConfigError: no positive throughput, or no price.
    """
    price, _ = hourly_price(price_per_hour, accelerator, prices)
    if output_tokens_per_s is None or not math.isfinite(output_tokens_per_s) or output_tokens_per_s <= 0:
        raise ConfigError(f"Cannot price {output_tokens_per_s} output tokens/s: there is no throughput to divide by.",
                          fix="use a load that completed requests (see slo_capacity).")
    return price / (output_tokens_per_s * 3600.0) * 1e6


def cost_at_capacity(capacity: Capacity, price_per_hour: float | None = None, *, accelerator: str | None = None,
                     prices: pd.DataFrame | None = None) -> pd.DataFrame:
    """Cost per million output tokens at the measured (and interpolated) SLO capacity.

    When no load meets the SLO the table has one row with no cost and the capacity's sentence as its note:
    there is no capacity, so there is no cost to invent.
    """
    price, basis = hourly_price(price_per_hour, accelerator, prices)
    columns = ["kind", "benchmark", "output_tokens_per_s", "usd_per_hour", "usd_per_million_output_tokens", "note"]
    if not capacity.met:
        return pd.DataFrame([{"kind": "none", "benchmark": None, "output_tokens_per_s": float("nan"),
                              "usd_per_hour": price, "usd_per_million_output_tokens": float("nan"),
                              "note": capacity.sentence}], columns=columns)
    rows = []
    for _, cap in capacity.to_frame().iterrows():
        tps = cap["output_tokens_per_s"]
        cost = cost_per_million_output_tokens(tps, price) if tps and tps > 0 else float("nan")
        rows.append({"kind": cap["kind"], "benchmark": cap["benchmark"], "output_tokens_per_s": tps,
                     "usd_per_hour": price, "usd_per_million_output_tokens": cost, "note": basis})
    return pd.DataFrame(rows, columns=columns)
