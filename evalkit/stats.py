"""Is a difference between two runs real? McNemar's exact test on paired items, bootstrap intervals for rates.

Two models asked the same items give paired verdicts (right/wrong, refused/answered). Only the items where
they disagree carry evidence: :func:`mcnemar` tests whether "A right, B wrong" and "A wrong, B right" are
equally likely (exact two-sided binomial test, no normal approximation, so it holds for small n).
:func:`bootstrap_ci` gives a percentile interval for a rate from resampled items.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from math import comb


@dataclass(frozen=True)
class Paired:
    """McNemar's test of two paired runs on the items both answered."""

    n: int  # items both runs judged
    a_only: int  # items where A is true and B false
    b_only: int
    rate_a: float | None
    rate_b: float | None
    p_value: float

    @property
    def significant(self) -> bool:
        return self.p_value < 0.05

    def verdict(self, a: str = "A", b: str = "B") -> str:
        if self.n == 0:
            return "no items in common"
        if not self.significant:
            return f"not significant at n={self.n} (p={self.p_value:.2f}; {self.a_only} vs {self.b_only} discordant)"
        lead = a if self.a_only > self.b_only else b
        return f"{lead} ahead, p={self.p_value:.3g} at n={self.n} ({self.a_only} vs {self.b_only} discordant)"


def _binom_two_sided(k: int, n: int) -> float:
    if n == 0:
        return 1.0
    tail = sum(comb(n, i) for i in range(0, min(k, n - k) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def mcnemar(a: dict, b: dict) -> Paired:
    """Paired test of two ``{item: bool or None}`` maps; items missing or None in either are left out."""
    common = [k for k in a if k in b and a[k] is not None and b[k] is not None]
    a_only = sum(1 for k in common if a[k] and not b[k])
    b_only = sum(1 for k in common if b[k] and not a[k])

    def rate(verdicts: dict) -> float | None:
        return sum(bool(verdicts[k]) for k in common) / len(common) if common else None

    return Paired(len(common), a_only, b_only, rate(a), rate(b),
                  _binom_two_sided(min(a_only, b_only), a_only + b_only))


def bootstrap_ci(flags: Sequence[bool], level: float = 0.95, rounds: int = 2000, seed: int = 0) \
        -> tuple[float, float] | None:
    """Percentile interval of the mean of ``flags`` (None when empty)."""
    values = [bool(f) for f in flags if f is not None]
    if not values:
        return None
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(rng.choice(values) for _ in range(n)) / n for _ in range(rounds))
    low = means[int((1 - level) / 2 * rounds)]
    high = means[min(rounds - 1, int((1 + level) / 2 * rounds))]
    return low, high
