"""Capacity at an SLO, knee and cost: the arithmetic, on small tables whose answers are known by hand."""

import math

import pandas as pd
import pytest

from evalkit import errors
from evalkit.perf import (
    COLUMNS,
    PRICES,
    SLO,
    cost_at_capacity,
    knee,
    slo_capacity,
)
from evalkit.perf.cost import cost_per_million_output_tokens, hourly_price


def table(points):
    """Rows (label, requests/s, output tok/s, ttft p99, itl p99, latency p50, successful, errored) in load order."""
    rows = []
    for order, (label, rps, tps, ttft, itl, lat, ok, err) in enumerate(points):
        row = dict.fromkeys(COLUMNS)
        row.update(benchmark=label, strategy="concurrent", requests_per_s=rps, output_tokens_per_s=tps,
                   ttft_p99_ms=ttft, itl_p99_ms=itl, latency_p50_s=lat, successful=ok, errored=err, incomplete=0,
                   load_order=order)
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


CURVE = table([
    ("c1", 1.0, 30.0, 100.0, 10.0, 0.5, 10, 0),
    ("c2", 2.0, 60.0, 200.0, 12.0, 0.6, 20, 0),
    ("c4", 4.0, 120.0, 600.0, 20.0, 0.9, 40, 0),
    ("c8", 5.0, 150.0, 1400.0, 40.0, 3.0, 50, 0),
])


def test_measured_capacity_and_interpolation_by_hand():
    cap = slo_capacity(CURVE, ttft_p99_ms=400, itl_p99_ms=30)
    assert cap.met and cap.measured_benchmark == "c2"
    assert cap.measured_requests_per_s == 2.0 and cap.measured_output_tokens_per_s == 60.0
    # TTFT reaches 400 ms half way from c2 (200) to c4 (600): 2 + 0.5 * (4 - 2) = 3 req/s; ITL stays within 30
    assert cap.interpolated_requests_per_s == pytest.approx(3.0)
    assert cap.interpolated_output_tokens_per_s == pytest.approx(90.0)
    assert cap.interpolated_between == ("c2", "c4") and cap.limited_by == "p99 TTFT"
    frame = cap.to_frame()
    assert list(frame["kind"]) == ["measured", "interpolated (not measured)"]
    assert "Interpolated (not measured)" in cap.sentence


def test_the_first_limit_crossed_decides_the_interpolation():
    # from c4 to c8 TTFT hits 1000 at t=0.5 but ITL hits 25 at t=0.25: ITL decides, 4 + 0.25 * 1 = 4.25 req/s
    cap = slo_capacity(CURVE, ttft_p99_ms=1000, itl_p99_ms=25)
    assert cap.measured_benchmark == "c4"
    assert cap.interpolated_requests_per_s == pytest.approx(4.25) and cap.limited_by == "p99 ITL"


def test_no_load_meets_the_slo_and_no_capacity_is_invented():
    cap = slo_capacity(CURVE, ttft_p99_ms=50)
    assert not cap.met
    assert cap.measured_requests_per_s is None and cap.interpolated_requests_per_s is None
    assert "No measured load meets the SLO" in cap.sentence and "c1" in cap.sentence
    assert "p99 TTFT 100.0 ms > 50 ms" in cap.sentence
    assert cap.to_frame().empty
    costs = cost_at_capacity(cap, 1.0)
    assert len(costs) == 1 and math.isnan(costs.loc[0, "usd_per_million_output_tokens"])
    assert "No measured load" in costs.loc[0, "note"]


def test_every_load_meets_says_capacity_is_a_lower_bound():
    cap = slo_capacity(CURVE, ttft_p99_ms=5000, itl_p99_ms=100)
    assert cap.met and cap.all_loads_meet and cap.measured_benchmark == "c8"
    assert cap.interpolated_requests_per_s is None and "at least" in cap.sentence


def test_errors_and_empty_loads_fail_the_slo():
    df = table([
        ("c1", 1.0, 30.0, 100.0, 10.0, 0.5, 10, 0),
        ("c2", 2.0, 60.0, 150.0, 11.0, 0.6, 18, 2),  # 10 % errors
        ("c4", None, None, None, None, None, 0, 0),  # nothing completed
    ])
    cap = slo_capacity(df, ttft_p99_ms=400)
    assert cap.measured_benchmark == "c1" and cap.interpolated_requests_per_s is None  # c2 failed on errors only
    assert [c["meets_slo"] for c in cap.checks] == [True, False, None]  # c4 was not measured
    assert "Left out" in cap.sentence and "c4" in cap.sentence
    assert slo_capacity(df, ttft_p99_ms=400, max_error_rate=0.2).measured_benchmark == "c2"


def test_a_higher_load_passing_again_does_not_raise_the_capacity():
    noisy = table([
        ("c1", 1.0, 30.0, 100.0, 10.0, 0.5, 10, 0),
        ("c2", 2.0, 60.0, 900.0, 12.0, 0.6, 20, 0),  # breaks p99 TTFT 500
        ("c4", 4.0, 120.0, 300.0, 20.0, 0.9, 40, 0),  # passes again: noise
    ])
    cap = slo_capacity(noisy, ttft_p99_ms=500)
    assert cap.measured_benchmark == "c1" and not cap.all_loads_meet
    assert cap.interpolated_requests_per_s == pytest.approx(1.5)  # 100 -> 900 crosses 500 half way
    assert "kept the SLO again (c4) after c2 broke it" in cap.sentence
    lowest_fails = table([("c1", 1.0, 30.0, 900.0, 10.0, 0.5, 10, 0), ("c2", 2.0, 60.0, 300.0, 12.0, 0.6, 20, 0)])
    cap = slo_capacity(lowest_fails, ttft_p99_ms=500)
    assert not cap.met and "no capacity to report" in cap.sentence and "(c2)" in cap.sentence


def test_an_unmeasured_lowest_load_is_left_out_not_failed():
    df = table([
        ("synchronous", None, None, None, None, None, 0, 0),
        ("c2", 2.0, 60.0, 200.0, 12.0, 0.6, 20, 0),
        ("c4", 4.0, 120.0, 600.0, 20.0, 0.9, 40, 0),
    ])
    cap = slo_capacity(df, ttft_p99_ms=400)
    assert cap.measured_benchmark == "c2" and cap.interpolated_requests_per_s == pytest.approx(3.0)
    assert "Left out, as they completed no request in their time: synchronous." in cap.sentence


def test_nothing_completed_says_so():
    df = table([("c1", None, None, None, None, None, 0, 3)])
    cap = slo_capacity(df, ttft_p99_ms=400)
    assert not cap.met and "no benchmark completed a single request" in cap.sentence


def test_slo_needs_a_positive_limit():
    with pytest.raises(errors.ConfigError, match="at least one limit"):
        SLO()
    with pytest.raises(errors.ConfigError, match="ttft_p99_ms=-5"):
        SLO(ttft_p99_ms=-5)
    with pytest.raises(errors.ConfigError, match="No SLO"):
        slo_capacity(CURVE)


def test_knee_by_hand():
    # scaled gain x - y: c1 0, c2 0.25-0.04=0.21, c4 0.75-0.16=0.59, c8 1-1=0 -> c4
    k = knee(CURVE)
    assert k.found and k.benchmark == "c4" and k.requests_per_s == 4.0
    assert "c4" in k.sentence


def test_knee_needs_three_points_and_a_bend():
    assert not knee(CURVE.iloc[:2]).found
    straight = table([(f"c{i}", i, 10.0 * i, 0, 0, 0.1 * i, 5, 0) for i in (1, 2, 3)])
    assert not knee(straight).found  # latency grows exactly as fast as throughput
    with pytest.raises(errors.ConfigError, match="no_such"):
        knee(CURVE, latency="no_such")


def test_cost_per_million_tokens():
    # 0.70 USD/h at 100 tok/s: 360 000 tok/h -> 0.70 / 0.36 = 1.944 USD per million
    assert cost_per_million_output_tokens(100, 0.70) == pytest.approx(0.70 / 0.36)
    assert cost_per_million_output_tokens(100, accelerator="L4") == pytest.approx(
        PRICES.loc["L4", "usd_per_hour"] / 0.36)
    with pytest.raises(errors.ConfigError, match="no throughput"):
        cost_per_million_output_tokens(0, 1.0)
    with pytest.raises(errors.ConfigError, match="not in the price table"):
        hourly_price(accelerator="TPU-v9")
    with pytest.raises(errors.ConfigError, match="No price"):
        hourly_price()


def test_price_table_is_editable_and_labelled():
    assert {"L4", "CPU-2vCPU"} <= set(PRICES.index)
    assert (PRICES["basis"].str.contains("illustrative")).all()
    mine = PRICES.copy()
    mine.loc["L4", "usd_per_hour"] = 2.0
    assert hourly_price(accelerator="L4", prices=mine)[0] == 2.0


def test_cost_at_capacity_rows():
    cap = slo_capacity(CURVE, ttft_p99_ms=400, itl_p99_ms=30)
    costs = cost_at_capacity(cap, 0.36)  # 0.36 USD/h = 1e-4 USD/s
    assert list(costs["kind"]) == ["measured", "interpolated (not measured)"]
    assert costs["usd_per_million_output_tokens"].tolist() == pytest.approx([0.36 / (60 * 3600) * 1e6,
                                                                             0.36 / (90 * 3600) * 1e6])
