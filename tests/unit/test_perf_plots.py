"""The performance figures and the panel's layout, drawn from the real sweep in tests/fixtures/guidellm."""

import gzip
from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from evalkit import errors, perf  # noqa: E402
from evalkit.plots import perf as plots  # noqa: E402
from evalkit.widgets.perf import SweepPanel  # noqa: E402

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "guidellm" / "sweep.json.gz"


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "benchmarks.json"
    path.write_bytes(gzip.decompress(FIXTURE.read_bytes()))
    rows, _ = perf.guidellm.parse_report(path)
    return perf.PerfResult(run_dir=str(path.parent), model="stories260k", profile="sweep", benchmarks=rows)


def test_throughput_latency_draws_the_slo_and_both_capacities(result):
    df = result.df.sort_values("load_order")
    limit = float((df["ttft_p99_ms"].iloc[1] + df["ttft_p99_ms"].iloc[2]) / 2)
    slo = perf.SLO(ttft_p99_ms=limit, itl_p99_ms=1000)
    cap = perf.slo_capacity(result, slo=slo)
    fig = plots.throughput_latency(result, slo=slo, capacity=cap)
    ttft_ax = fig.axes[0]
    labels = [t.get_text() for t in ttft_ax.get_legend().get_texts()]
    assert f"SLO: p99 <= {limit:g} ms" in labels
    assert "capacity (measured)" in labels and "capacity (interpolated)" in labels
    vertical = {round(line.get_xdata()[0], 6) for line in ttft_ax.get_lines() if line.get_linestyle() in ("-", ":")
                and len(set(line.get_xdata())) == 1}
    assert round(cap.measured_requests_per_s, 6) in vertical
    assert round(cap.interpolated_requests_per_s, 6) in vertical
    p99 = ttft_ax.get_lines()[1]
    assert list(p99.get_ydata()) == list(df["ttft_p99_ms"])


def test_latency_percentiles_in_load_order(result):
    fig = plots.latency_percentiles(result)
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert ticks == list(result.df.sort_values("load_order")["benchmark"])


def test_grid_heatmap_marks_cells_without_requests(result):
    rows = [{**row, "prompt_tokens": p, "output_tokens": o, "cell_dir": f"p{p}_o{o}"}
            for row, (p, o) in zip(result.benchmarks, [(16, 8), (16, 32), (64, 8), (64, 32)], strict=True)]
    rows[2].update(successful=0, ttft_p50_ms=None)
    grid = perf.TokenGridResult(run_dir="/tmp", model="m", profile="synchronous", prompt_tokens=[16, 64],
                                output_tokens=[8, 32], cells=rows)
    assert grid.pivot("ttft_p50_ms").shape == (2, 2) and np.isnan(grid.pivot("ttft_p50_ms").loc[64, 8])
    fig = plots.token_grid_heatmap(grid, ("ttft_p50_ms",))
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "no request\ncompleted" in texts and f"{rows[0]['ttft_p50_ms']:.3g}" in texts
    with pytest.raises(errors.ConfigError, match="No column"):
        grid.pivot("nope")


class FakeServer:
    model, base_url, root_url, tokenizer, max_model_len = "stories260k", "http://h:1/v1", "http://h:1", "t", 512

    def problem(self):
        raise AssertionError("the panel must not reach the server for a bad input")


def test_panel_layout_and_bad_input_in_the_status_line(tmp_path):
    panel = SweepPanel(FakeServer(), tmp_path, profile="concurrent", rates="1,x")
    assert panel.prompt_tokens.max == 511 and panel.model.options[0] == "stories260k"
    assert "evalkit-perf-table" in panel.table._dom_classes and "evalkit-perf-run" in panel.button._dom_classes
    assert panel.run() is None
    assert "ConfigError" in panel.status.value and panel.table.value == "" and not panel.button.disabled
    panel.rates.value = "1,2"
    panel.output_tokens.value = 511  # 64 + 511 tokens exceed the context: refused before any request
    assert panel.run() is None and "ContextLengthError" in panel.status.value and "512" in panel.status.value
