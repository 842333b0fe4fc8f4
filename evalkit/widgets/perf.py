"""The interactive panel of notebook 01: choose token counts, model, profile and duration, run a sweep, redraw.

The panel only arranges inputs and outputs: the run button calls :func:`evalkit.perf.sweep` (and
:func:`evalkit.serve.serve` when another model is picked) and shows its table and figure. Its parts carry stable
CSS classes so a browser test can find them: ``evalkit-perf-run`` (button), ``evalkit-perf-status``,
``evalkit-perf-table`` (an HTML widget; the table inside it has class ``evalkit-perf-results``) and
``evalkit-perf-plot`` (a PNG image).
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import ipywidgets as w

from evalkit.errors import ConfigError
from evalkit.models import PRESETS
from evalkit.perf import PROFILES, WORKLOADS, PerfArgs, PerfResult, fit_workload, sweep
from evalkit.plots.perf import throughput_latency
from evalkit.runs import new_run_dir
from evalkit.widgets._panel import Panel

D = PerfArgs.defaults()  # the run arguments' defaults (the panel starts on a short concurrent run)


class SweepPanel(Panel):
    """Widgets for one sweep at a time; each click runs into ``<run_dir>/run-NN`` and redraws table and plot.

    Args:
        srv: the server to measure (another model from the dropdown is served with ``serve(model)``).
        run_dir: parent folder of the panel's runs (default: a new ``runs/<time>-perf-panel``).
        prompt_tokens: initial prompt length.
        output_tokens: initial output length.
        profile: initial profile.
        rates: initial rates or stream counts (used by concurrent, constant and poisson).
        max_seconds: initial seconds per load.
        slo: latency limits drawn on the plot.
        **sweep_kwargs: more :func:`~evalkit.perf.sweep` arguments for every run (``max_concurrency``...).
    """

    def __init__(self, srv, run_dir: str | Path | None = None, *, prompt_tokens: int = D.prompt_tokens,
                 output_tokens: int = D.output_tokens,
                 profile: str = "concurrent", rates: str | list = "1,2,4", max_seconds: float = 3, slo=None,
                 **sweep_kwargs):
        super().__init__(srv, label="Run sweep", ready="Set the values and press <b>Run sweep</b>.")
        self.servers = {srv.model: srv}
        self.run_dir = Path(run_dir) if run_dir else None
        self.slo = slo
        self.sweep_kwargs = sweep_kwargs
        limit = (srv.max_model_len or 4096) - 1
        style = {"description_width": "130px"}
        self.prompt_tokens = w.IntSlider(prompt_tokens, min=1, max=limit, description="prompt tokens", style=style)
        self.output_tokens = w.IntSlider(output_tokens, min=1, max=limit, description="output tokens", style=style)
        self.workload = w.Dropdown(options=["your own", *WORKLOADS], value="your own", description="workload",
                                   style=style)
        self.workload.observe(self._set_workload, names="value")
        models = list(dict.fromkeys([srv.model, *PRESETS]))
        self.model = w.Dropdown(options=models, value=srv.model, description="model", style=style)
        self.profile = w.Dropdown(options=list(PROFILES), value=profile, description="profile", style=style)
        rates = ",".join(str(r) for r in rates) if isinstance(rates, (list, tuple)) else str(rates or "")
        self.rates = w.Text(rates, description="rates / streams", style=style,
                            placeholder="e.g. 1,2,4 (concurrent, constant, poisson)")
        self.max_seconds = w.FloatSlider(max_seconds, min=1, max=60, step=1, description="seconds per load",
                                         style=style)
        self.button.add_class("evalkit-perf-run")
        self.status.add_class("evalkit-perf-status")
        self.output.layout = {"max_height": "160px", "overflow": "auto", "border": "1px solid #ddd"}
        self.output.add_class("evalkit-perf-log")
        self.table = w.HTML()
        self.table.add_class("evalkit-perf-table")
        self.plot = w.Image(format="png", layout={"max_width": "900px"})
        self.plot.add_class("evalkit-perf-plot")
        self.layout([self.model, self.profile, self.rates, self.workload, self.prompt_tokens, self.output_tokens,
                     self.max_seconds],
                    self.table, self.plot)

    def _set_workload(self, _change=None) -> None:
        """A use-case workload sets the token sliders (fitted to the model's context; the status says how)."""
        if self.workload.value not in WORKLOADS:
            return
        fitted = fit_workload(self.workload.value, self.srv.max_model_len, self.srv.model)
        self.prompt_tokens.value, self.output_tokens.value = fitted.prompt_tokens, fitted.output_tokens
        self.status.value = fitted.note

    def _server(self):
        name = self.model.value
        if name not in self.servers:
            from evalkit.serve import serve_beside

            self.servers[name] = serve_beside(name, [self.srv])
        return self.servers[name]

    def _rates(self):
        text = self.rates.value.replace(";", ",")
        if self.profile.value not in ("concurrent", "constant", "poisson") or not text.strip():
            return None
        try:
            values = [float(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise ConfigError(f"rates {text!r} are not numbers separated by commas.", fix="type e.g. 1,2,4.") from None
        return [int(v) if v.is_integer() else v for v in values]

    def busy_text(self) -> str:
        return "Running GuideLLM... (progress below)"

    def work(self) -> PerfResult:
        """Run a sweep with the current values into ``<run_dir>/run-NN`` and redraw the table and the plot."""
        started = time.monotonic()
        with self.output:
            if self.run_dir is None:
                self.run_dir = new_run_dir("perf-panel")
            folder = self.run_dir / f"run-{self.runs + 1:02d}"
            result = sweep(self._server(), profile=self.profile.value, rates=self._rates(),
                           prompt_tokens=self.prompt_tokens.value, output_tokens=self.output_tokens.value,
                           max_seconds=self.max_seconds.value, slo=self.slo, run_dir=folder, html=False,
                           **self.sweep_kwargs)
        self.table.value = result.summary().round(2).to_html(classes="evalkit-perf-results")
        png = io.BytesIO()
        throughput_latency(result, slo=self.slo).savefig(png, format="png", dpi=90)
        self.plot.value = png.getvalue()
        self.status.value = (f"Run {self.runs + 1}: {result.model}, {self.prompt_tokens.value} prompt + "
                             f"{self.output_tokens.value} output tokens, {len(result.benchmarks)} benchmark(s) "
                             f"in {time.monotonic() - started:.0f} s; files in {result.path}")
        if result.warnings:  # GuideLLM's own (e.g. a client too slow for the load) and any rerun
            self.status.value += f" ({len(result.warnings)} warning(s), listed in the log above)"
            with self.output:
                print("\n".join(f"warning: {text}" for text in result.warnings))
        return result


def sweep_panel(srv, run_dir: str | Path | None = None, **kwargs) -> SweepPanel:
    """Build a :class:`SweepPanel` (displays itself as a notebook cell's value)."""
    return SweepPanel(srv, run_dir, **kwargs)
