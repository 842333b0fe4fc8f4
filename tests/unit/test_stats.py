"""McNemar's paired test and bootstrap intervals: exact p-values, items left out, a verdict that says noise."""

import pytest

from evalkit.stats import bootstrap_ci, mcnemar

pytestmark = pytest.mark.unit


def test_mcnemar_counts_only_discordant_common_items():
    a = {i: True for i in range(30)}
    b = {i: i < 10 for i in range(30)}
    b[99] = True  # only in b: left out
    a[5] = None  # not judged in a: left out
    result = mcnemar(a, b)
    assert (result.n, result.a_only, result.b_only) == (29, 20, 0)
    assert result.p_value == pytest.approx(2 * 0.5 ** 20) and result.significant
    assert "A ahead" in result.verdict()


def test_mcnemar_says_when_a_difference_is_noise():
    a = {i: i % 2 == 0 for i in range(10)}
    b = {i: i % 3 == 0 for i in range(10)}
    result = mcnemar(a, b)
    assert not result.significant and result.verdict().startswith("not significant at n=10")
    assert mcnemar({}, {}).verdict() == "no items in common"


def test_bootstrap_ci_brackets_the_rate():
    low, high = bootstrap_ci([True] * 30 + [False] * 70)
    assert low < 0.3 < high and high - low < 0.25
    assert bootstrap_ci([]) is None and bootstrap_ci([True] * 5) == (1.0, 1.0)
