"""The layer registry agrees with everything that depends on it, and result files say what they hold."""

import importlib
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

import evalkit
from evalkit import errors, layers, pipeline, scorecard
from evalkit.cli import build_parser
from evalkit.perf import PerfResult, TokenGridResult
from evalkit.result import SCHEMA_VERSION, LayerResult
from evalkit.scorecard.collect import newest_results

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


@pytest.mark.parametrize("layer", layers.LAYERS, ids=lambda la: la.name)
def test_every_layer_has_its_parts(layer):
    assert (ROOT / "notebooks" / f"{layer.notebook}.ipynb").exists()
    profiles = yaml.safe_load((ROOT / "profiles.yaml").read_text())
    for name, profile in profiles.items():
        assert layer.notebook in profile["notebooks"], f"profiles.yaml, {name}: no entry for {layer.notebook}"
    result = layer.result_class()
    assert issubclass(result, LayerResult) and result.layer == layer.name and result.result_kind() == layer.name
    assert layer.metrics(), f"evalkit.{layer.module} lists no METRICS"
    assert callable(getattr(layer.package(), layer.run))
    assert callable(importlib.import_module(f"evalkit.plots.{layer.module}").report_sections)
    assert importlib.import_module(f"evalkit.widgets.{layer.module}")
    commands = build_parser()._subparsers._group_actions[0].choices
    assert layer.name in commands
    for name in (layer.module, layer.result, *layer.exports):
        assert name in evalkit.__all__ and getattr(evalkit, name) is not None
    assert pipeline.NOTEBOOKS[layer.notebook] == layer.name


def test_the_registry_is_ordered_and_unique():
    assert [la.order for la in sorted(layers.LAYERS, key=lambda la: la.order)] == list(range(1, len(layers.LAYERS) + 1))
    for field in ("name", "notebook", "module"):
        values = [getattr(la, field) for la in layers.LAYERS]
        assert len(set(values)) == len(values), field
    assert list(pipeline.NOTEBOOKS)[0] == "00_serve" and list(pipeline.NOTEBOOKS)[-1] == "05_ci"


def test_every_result_type_has_its_own_kind():
    kinds = [cls.result_kind() for cls in _subclasses(LayerResult) if cls.__module__.startswith("evalkit.")]
    assert len(kinds) == len(set(kinds)) and "performance-grid" in kinds


def test_thresholds_name_only_registered_layers_and_metrics():
    thresholds = yaml.safe_load((ROOT / "thresholds.yaml").read_text())
    assert set(thresholds) <= set(layers.names())
    scorecard.load_thresholds(ROOT / "thresholds.yaml")  # checks every metric against the catalogue


def test_unknown_layer_lists_the_layers():
    with pytest.raises(errors.ConfigError, match=", ".join(layers.names())):
        layers.get("speed")


def _perf(tmp_path) -> PerfResult:
    return PerfResult(run_dir=str(tmp_path / "perf"), model="m", profile="sweep", benchmarks=[])


def test_result_files_carry_kind_and_schema(tmp_path):
    path = _perf(tmp_path).save()
    data = json.loads(path.read_text())
    assert data["schema"] == SCHEMA_VERSION and data["kind"] == "performance" and data["layer"] == "performance"
    assert PerfResult.load(path).model == "m"


def test_a_result_cut_short_is_refused_naming_the_file(tmp_path):
    path = _perf(tmp_path).save()
    path.write_text(path.read_text()[:40])
    with pytest.raises(errors.ResultFileError, match=str(path)) as info:
        PerfResult.load(path)
    assert "cut short" in str(info.value) and "--resume" in info.value.fix


def test_an_unknown_schema_version_is_refused(tmp_path):
    path = _perf(tmp_path).save()
    path.write_text(json.dumps({**json.loads(path.read_text()), "schema": 99}))
    with pytest.raises(errors.ResultFileError, match="schema version 99"):
        scorecard.load_layer_result(path)


def test_a_result_of_another_kind_is_refused(tmp_path):
    grid = TokenGridResult(run_dir=str(tmp_path / "grid"), model="m", profile="synchronous", prompt_tokens=[16],
                           output_tokens=[8])
    with pytest.raises(errors.ResultFileError, match="'performance-grid' result, not a 'performance' one"):
        PerfResult.load(grid.save())


def test_a_token_grid_is_never_the_newest_performance_result(tmp_path):
    _perf(tmp_path).save()
    TokenGridResult(run_dir=str(tmp_path / "grid"), model="m", profile="synchronous", prompt_tokens=[16],
                    output_tokens=[8]).save()
    newest = newest_results(tmp_path)
    assert newest == {"performance": tmp_path / "perf" / "result.json"}


def test_files_older_than_the_kind_field_still_load(tmp_path):
    path = _perf(tmp_path).save()
    data = json.loads(path.read_text())
    del data["kind"], data["schema"]
    path.write_text(json.dumps(data))
    assert scorecard.load_layer_result(path).model == "m"


EMPTY = {"performance": {"profile": "sweep"}, "format": {"sets": [], "rows": []}, "accuracy": {},
         "safety": {"sets": [], "rows": [], "rules": []}}


@pytest.mark.parametrize("layer", layers.LAYERS, ids=lambda la: la.name)
def test_every_result_speaks_the_same_words(layer, tmp_path):
    result = layer.result_class()(run_dir=str(tmp_path), model="m", **EMPTY[layer.name])
    for table in (result.df, result.metrics_table(), result.summary()):
        assert isinstance(table, pd.DataFrame)
    assert list(result.metrics_table().columns) == ["metric", "value", "unit", "direction", "n", "what", "note"]
    assert len(result.metrics_table()) == len(result.metrics())
    assert result.tool_runs() == []  # nothing ran: no tool command recorded


RAN = {"performance": {"command": ["guidellm", "run"], "tool_duration_s": 7.5},
       "format": {"promptfoo": {"command": ["promptfoo", "eval"], "duration_s": 2.5}},
       "accuracy": {"commands": [["lm-eval", "run"]], "durations_s": {"completions": 9.0}},
       "safety": {"promptfoo": {"command": ["promptfoo", "eval"], "duration_s": 3.0}}}


@pytest.mark.parametrize("layer", layers.LAYERS, ids=lambda la: la.name)
def test_every_result_lists_its_tool_runs_the_same_way(layer, tmp_path):
    result = layer.result_class()(run_dir=str(tmp_path), model="m", **EMPTY[layer.name], **RAN[layer.name])
    [ran] = result.tool_runs()
    assert ran.command[0] in ("guidellm", "promptfoo", "lm-eval") and ran.duration_s > 0
