"""Typed run arguments: one source for the defaults of the functions, the CLI and the profiles; clear errors."""

import inspect

import pytest
import yaml

from evalkit import errors, layers, pipeline
from evalkit.args import RunArgs
from evalkit.cli import build_parser
from evalkit.pipeline.profiles import with_overrides
from evalkit.settings import get_settings

pytestmark = pytest.mark.unit

@pytest.mark.parametrize("layer", layers.LAYERS, ids=lambda la: la.name)
def test_the_function_and_the_command_take_their_defaults_from_the_model(layer):
    args = layer.args_class()
    assert issubclass(args, RunArgs)
    args.check()  # the defaults are valid
    signature = inspect.signature(getattr(layer.package(), layer.run)).parameters
    parsed = vars(build_parser().parse_args([layer.name]))
    for name, field in args.model_fields.items():
        assert name in signature, f"{layer.run}() has no argument {name}"
        default = signature[name].default
        assert default == field.default or tuple(default) == tuple(field.default), name
        if name in parsed:
            assert parsed[name] == field.default or tuple(parsed[name]) == tuple(field.default), name


@pytest.mark.parametrize("layer, values, words", [
    ("performance", {"sweep_size": 0}, ["sweep_size=0 is not allowed", "whole number > 0"]),
    ("performance", {"profile": "warp"}, ["Unknown profile", "synchronous, concurrent"]),
    ("format", {"limit": 2.5}, ["limit=2.5", "whole number >= 1"]),
    ("accuracy", {"num_fewshot": -1}, ["num_fewshot=-1", ">= 0"]),
    ("accuracy", {"api": "grpc"}, ["api='grpc' is not one of auto, completions, chat"]),
    ("safety", {"sample": True}, ["sample=True is not allowed", "whole number"]),
    ("safety", {"colour": "red"}, ["Unknown argument 'colour'"]),
])
def test_a_bad_value_is_one_config_error_with_a_fix(layer, values, words):
    with pytest.raises(errors.ConfigError) as info:
        layers.get(layer).args_class().check(**values)
    for word in words:
        assert word in str(info.value)
    assert info.value.fix


def test_settings_back_the_defaults_left_to_them():
    from evalkit.fmt import FormatArgs

    assert FormatArgs.defaults().max_tokens is None and get_settings().format_max_tokens == 192


def test_a_profile_value_outside_the_limits_is_refused(tmp_path):
    profiles = yaml.safe_load((get_settings().project_dir / "profiles.yaml").read_text())
    profiles["quick"]["notebooks"]["04_safety"]["SAMPLE"] = 0
    with pytest.raises(errors.ConfigError, match="profile quick, notebook 04_safety, SAMPLE: sample=0"):
        pipeline.profile_parameters("quick", profiles)
    for name in ("quick", "full"):
        pipeline.profile_parameters(name)  # the shipped profiles obey the limits


def test_set_lays_yaml_values_over_one_profile_and_is_checked_like_it():
    shipped = pipeline.load_profiles()
    profiles = with_overrides(shipped, "quick", [
        "04_safety.COMPARE_MODEL=null", "03_accuracy.LIMIT=2", "01_performance.GRID_OUTPUT_TOKENS=[8, 16]",
        "02_format.STRUCTURED=plain"])
    params = pipeline.profile_parameters("quick", profiles)
    assert params["04_safety"]["COMPARE_MODEL"] is None and params["03_accuracy"]["LIMIT"] == 2
    assert params["01_performance"]["GRID_OUTPUT_TOKENS"] == [8, 16] and params["02_format"]["STRUCTURED"] == "plain"
    assert params["04_safety"]["SAMPLE"] == shipped["quick"]["notebooks"]["04_safety"]["SAMPLE"]  # the rest kept
    assert shipped["quick"]["notebooks"]["04_safety"]["COMPARE_MODEL"] == "smollm2-135m"  # the shipped dict untouched
    assert with_overrides(shipped, "quick", []) is shipped
    for bad, message in [("03_accuracy.LIMIT", "not NOTEBOOK.PARAM=VALUE"), ("LIMIT=2", "not NOTEBOOK.PARAM=VALUE"),
                         ("09_nope.LIMIT=2", "unknown notebook '09_nope'"), ("03_accuracy.LIMIT=[1", "not YAML")]:
        with pytest.raises(errors.ConfigError, match=message):
            with_overrides(shipped, "quick", [bad])
    with pytest.raises(errors.ConfigError, match="unknown parameter"):
        pipeline.profile_parameters("quick", with_overrides(shipped, "quick", ["03_accuracy.LIMT=2"]))
    with pytest.raises(errors.ConfigError, match="SAMPLE: sample=0"):
        pipeline.profile_parameters("quick", with_overrides(shipped, "quick", ["04_safety.SAMPLE=0"]))
    args = build_parser().parse_args(["run", "--set", "03_accuracy.LIMIT=2", "--set", "04_safety.SAMPLE=4"])
    assert args.set == ["03_accuracy.LIMIT=2", "04_safety.SAMPLE=4"]


def test_a_profile_s_base_model_is_the_adapter_s_base_weights_or_the_run_model_itself():
    from evalkit.pipeline.profiles import notebook_model, profile_parameters

    # the quick profile's performance layer measures the base weights of its adapter, on the same server
    assert profile_parameters("quick")["01_performance"]["MODEL"] == "base"
    assert notebook_model("base", "smollm2-135m-safety") == "smollm2-135m"
    # another run model (--model ladder-m) or a server attached by URL: the served model itself
    assert notebook_model("base", "ladder-m") == "ladder-m"
    assert notebook_model("base", "stories260k") == "stories260k"
    assert notebook_model("qwen2.5-0.5b-instruct", "smollm2-135m-safety") == "qwen2.5-0.5b-instruct"
