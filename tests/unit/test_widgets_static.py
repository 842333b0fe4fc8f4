"""What a saved notebook shows of a panel and of folded answers, without a kernel."""

import ipywidgets as W
import pandas as pd

from evalkit import safety
from evalkit.widgets._panel import Panel, with_static_view
from evalkit.widgets.scorecard import ThresholdPanel


def test_a_panel_saves_a_list_of_its_inputs_beside_the_live_widget():
    widget = W.VBox([W.HBox([W.Dropdown(options=["chat", "rag"], value="rag", description="workload"),
                             W.IntSlider(value=32, description="output tokens")]),
                     W.SelectMultiple(options=["a", "b", "c"], value=["a", "c"], description="sets"),
                     W.Button(description="Run"), W.HTML("status"), W.Output(), W.Image(value=b"\x89PNG")])
    bundle = with_static_view(widget, "Sweep panel")
    assert "application/vnd.jupyter.widget-view+json" in bundle  # JupyterLab still draws the live panel
    assert "VBox(children" not in bundle["text/plain"]
    assert bundle["text/plain"].endswith("workload = rag; output tokens = 32; sets = a, c; button = Run")
    assert "<li><b>output tokens</b>: 32</li>" in bundle["text/html"] and "status" not in bundle["text/html"]


def test_every_panel_displays_through_the_static_view(monkeypatch):
    shown = []
    monkeypatch.setattr("evalkit.widgets._panel.display", lambda obj, raw=False: shown.append((obj, raw)))
    panel = Panel(srv=None)
    panel.layout([W.FloatText(value=2.5, description="seconds")])
    panel._ipython_display_()
    bundle, raw = shown[0]
    assert raw and "seconds = 2.5; button = Run" in bundle["text/plain"]
    monkeypatch.setattr("evalkit.widgets.scorecard.display", lambda obj, raw=False: shown.append((obj, raw)))
    ThresholdPanel(W.VBox([W.FloatText(value=0.5, description="bound")]))._ipython_display_()
    assert "Threshold panel" in shown[1][0]["text/plain"] and "bound = 0.5" in shown[1][0]["text/plain"]


def test_answers_to_harmful_asks_are_folded_behind_a_content_note():
    frame = pd.DataFrame({"prompt": ["how to <b>x</b>"], "output": ["Sure, step 1"]})
    html = safety.hidden_answers(frame).data
    assert html.startswith("<details><summary>Content note:") and "(1 rows)</summary>" in html
    assert "<details open" not in html and "&lt;b&gt;x&lt;/b&gt;" in html  # closed until clicked; escaped


def test_the_perf_panel_with_its_plot_image_lists_its_knobs(tmp_path):
    from evalkit.widgets.perf import SweepPanel

    class Server:
        model, base_url, max_model_len = "stories260k", "http://127.0.0.1:9/v1", 512

    panel = SweepPanel(Server(), tmp_path, profile="concurrent", rates="1,2,4")
    text = with_static_view(panel.widget, "SweepPanel")["text/plain"]
    assert "profile = concurrent" in text and "button = " in text
