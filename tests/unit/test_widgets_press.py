"""The run buttons of the panels: errors end in the status line, never in a panel stuck on "running"."""

from __future__ import annotations

import gzip
from pathlib import Path

import ipywidgets as w
import pytest

from evalkit import perf
from evalkit.errors import ToolError
from evalkit.widgets import perf as perf_panel
from evalkit.widgets._press import error_html, pressed


def _parts():
    return w.Button(), w.HTML(), w.Output()


def test_success_keeps_the_status_the_block_set_and_enables_the_button():
    button, status, output = _parts()
    with pressed(button, status, "running <x>", output=output) as press:
        assert button.disabled and status.value == "running &lt;x&gt;"
        status.value = "done"
    assert press.error is None and status.value == "done" and not button.disabled


def test_an_evalkit_error_shows_its_message_and_fix():
    button, status, output = _parts()
    with pressed(button, status, "running", output=output) as press:
        raise ToolError("GuideLLM exited with 2.", fix="read the log <here>.")
    assert isinstance(press.error, ToolError) and not button.disabled
    assert "<b>ToolError</b>" in status.value and "GuideLLM exited with 2." in status.value
    assert "read the log &lt;here&gt;." in status.value  # escaped: a message cannot inject HTML


def test_an_unexpected_error_is_shown_with_its_traceback(capsys):
    button, status, output = _parts()
    with pressed(button, status, "running", output=output) as press:
        {}["missing"]
    assert isinstance(press.error, KeyError) and not button.disabled
    assert status.value == error_html(press.error) + " (traceback below)"
    assert "Traceback" in capsys.readouterr().err  # outside a kernel, the Output widget passes it through


def test_keyboard_interrupt_is_not_swallowed():
    button, status, output = _parts()
    with pytest.raises(KeyboardInterrupt), pressed(button, status, "running", output=output):
        raise KeyboardInterrupt
    assert not button.disabled


class _Server:
    model, base_url, max_model_len = "stories260k", "http://127.0.0.1:9/v1", 512


def test_the_perf_panel_reports_a_crash_in_the_sweep(monkeypatch, tmp_path):
    def broken_sweep(*_args, **_kwargs):
        raise ZeroDivisionError("no successful requests")

    monkeypatch.setattr(perf_panel, "sweep", broken_sweep)
    panel = perf_panel.SweepPanel(_Server(), tmp_path)
    assert panel.run() is None
    assert isinstance(panel.error, ZeroDivisionError) and panel.runs == 0
    assert "ZeroDivisionError" in panel.status.value and "no successful requests" in panel.status.value
    assert not panel.button.disabled


def test_the_perf_panel_draws_a_result_and_shows_its_warnings(monkeypatch, tmp_path):
    report = tmp_path / "benchmarks.json"
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "guidellm" / "sweep.json.gz"
    report.write_bytes(gzip.decompress(fixture.read_bytes()))
    rows, _ = perf.guidellm.parse_report(report)
    calls = []

    def recorded_sweep(srv, **kwargs):
        calls.append(kwargs)
        return perf.PerfResult(run_dir=str(kwargs["run_dir"]), model=srv.model, profile=kwargs["profile"],
                               benchmarks=rows, warnings=["GuideLLM printed nothing for 181 s and was rerun"])

    monkeypatch.setattr(perf_panel, "sweep", recorded_sweep)
    panel = perf_panel.SweepPanel(_Server(), tmp_path, output_tokens=16, rates="1, 2")
    result = panel.run()
    assert result is not None and panel.error is None and panel.runs == 1
    assert calls[0]["rates"] == [1, 2] and calls[0]["output_tokens"] == 16
    assert calls[0]["run_dir"] == tmp_path / "run-01"
    assert panel.status.value.startswith("Run 1: stories260k, 64 prompt + 16 output tokens, 4 benchmark(s)")
    assert "(1 warning(s), listed in the log above)" in panel.status.value
    assert "evalkit-perf-results" in panel.table.value and panel.plot.value[:4] == b"\x89PNG"
