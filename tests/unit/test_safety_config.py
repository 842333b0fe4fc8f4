"""Safety config generation: set names, seeded stratified samples, tests, templates, grader; fixtures stay current."""

import importlib
import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from evalkit import errors, safety
from evalkit.promptfoo import write_config

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "promptfoo" / "safety"


class Srv:
    base_url, model = "http://127.0.0.1:8000/v1", "stories260k"


class Grader:
    base_url, model = "http://10.0.0.7:8001/v1", "judge-7b"


def test_set_names():
    assert safety.config.expand_sets(["custom", "xstest", "advbench"]) == ["advbench", "xstest_safe", "xstest_unsafe",
                                                                     "custom"]
    assert safety.config.expand_sets("bbq") == ["bbq"]
    with pytest.raises(errors.ConfigError, match="Unknown safety set 'harmbnech'"):
        safety.config.expand_sets(["harmbnech"])
    with pytest.raises(errors.ConfigError, match="No safety set"):
        safety.config.expand_sets([])


def test_samples_are_seeded_and_xstest_is_stratified():
    assert list(safety.config.sample_advbench(5, seed=3)["id"]) == list(safety.config.sample_advbench(5, seed=3)["id"])
    assert list(safety.config.sample_advbench(5, seed=3)["id"]) != list(safety.config.sample_advbench(5, seed=4)["id"])
    assert (safety.config.sample_advbench(300)["id"] % 2 == 1).all()  # the ladder's training rows (even) never asked
    harm = safety.config.sample_harmbench(12, seed=0)
    assert harm["type"].value_counts().tolist() == [2] * 6 and harm["id"].is_unique  # 6 categories x 2
    safe = safety.sample_xstest(20, seed=0, label="safe")
    assert set(safe["label"]) == {"safe"} and set(safe.groupby("type").size()) == {2}  # 10 types x 2
    unsafe = safety.sample_xstest(8, seed=0, label="unsafe")
    assert unsafe["type"].is_unique and unsafe["type"].str.startswith("contrast_").all()  # 8 types x 1


def test_build_tests_counts_and_assertions():
    tests = safety.build_tests(["advbench", "harmbench", "xstest", "bbq", "custom"], sample=4, seed=0,
                               bbq_categories=["Age"])
    sets = [t["metadata"]["set"] for t in tests]
    assert [sets.count(s) for s in safety.SETS] == [4, 4, 4, 4, 4, 12]
    harmful = tests[0]
    assert harmful["assert"] == [{"$ref": "#/assertionTemplates/refuses"}] and harmful["metadata"]["expect"] == "refuse"
    assert json.loads(harmful["vars"]["messages"]) == [{"role": "user", "content": harmful["vars"]["text"]}]
    safe = next(t for t in tests if t["metadata"]["set"] == "xstest_safe")
    assert safe["assert"] == [{"$ref": "#/assertionTemplates/answers"}] and safe["metadata"]["category"]
    with pytest.raises(errors.ConfigError, match="sample must be"):
        safety.build_tests(["advbench"], sample=0)


def test_grader_adds_a_rubric_and_the_grader_provider():
    tests = safety.build_tests(["advbench", "xstest_safe"], sample=1, grader=True)
    rubrics = safety.load_rules()["rubrics"]
    assert tests[0]["assert"][1] == {"type": "llm-rubric", "value": rubrics["refuses"], "metric": "grader"}
    assert tests[1]["assert"][1]["value"] == rubrics["answers"]
    config = safety.safety_config(Srv(), tests, grader=Grader())
    grader = config["defaultTest"]["options"]["provider"]
    assert grader["id"] == "openai:chat:judge-7b" and grader["config"]["apiBaseUrl"] == Grader.base_url
    assert "defaultTest" not in safety.safety_config(Srv(), tests)


def test_config_shows_the_rules_as_readable_javascript(tmp_path):
    config = safety.safety_config(Srv(), safety.build_tests(["advbench"], sample=1), max_tokens=32)
    assert config["prompts"] == ["{{ messages }}"] and config["providers"][0]["config"]["max_tokens"] == 32
    assert set(config["assertionTemplates"]) == {"refuses", "answers", "bbq_choice"}
    text = write_config(config, tmp_path / "promptfooconfig.yaml").read_text()
    assert "    value: |-\n      // refusal rules (data/safety/refusal_rules.yaml)" in text
    assert '      ["apology", "start", /(?:i\'m |i am |im )?' in text
    assert yaml.safe_load(text)["assertionTemplates"]["refuses"]["value"] == config["assertionTemplates"][
        "refuses"]["value"]


def _fixture_script():
    spec = importlib.util.spec_from_file_location("make_safety_fixture", ROOT / "scripts" / "make_safety_fixture.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["model", "grader", "echo"])
def test_committed_fixture_configs_are_what_the_code_generates(name):
    """If this fails, the config generator changed: rerun scripts/make_safety_fixture.py."""
    script = _fixture_script()
    config = getattr(script, f"{name}_config")(Srv())
    committed = yaml.safe_load((FIXTURES / name / "promptfooconfig.yaml").read_text())
    assert json.loads(json.dumps(config)) == committed


def test_unreachable_grader_names_the_url_and_the_fix():
    with pytest.raises(errors.ServerUnreachableError) as info:
        safety.config.attach_grader("http://127.0.0.1:9/v1")
    message = str(info.value)
    assert "LLM grader at http://127.0.0.1:9/v1 is unreachable" in message and "grader_url=None" in message


def test_harmbench_categories_can_be_chosen_and_unknown_ones_are_listed():
    chosen = safety.config.sample_harmbench(6, seed=0, categories=["illegal", "harmful"])
    assert set(chosen["type"]) == {"illegal", "harmful"} and len(chosen) == 6
    with pytest.raises(errors.ConfigError, match="Unknown HarmBench category 'weapons'") as info:
        safety.check_safety(object(), sets=["harmbench"], harmbench_categories=["weapons"])
    assert "chemical_biological" in info.value.fix


def test_two_models_are_two_providers_of_one_config():
    class Srv:
        def __init__(self, model, url):
            self.model, self.base_url = model, url

    a, b = Srv("ladder-m", "http://127.0.0.1:8000/v1"), Srv("ladder-m-control", "http://127.0.0.1:8001/v1")
    config = safety.safety_config([a, b], safety.build_tests(["advbench"], sample=2))
    assert [p["label"] for p in config["providers"]] == ["ladder-m", "ladder-m-control"]
    assert [p["config"]["apiBaseUrl"] for p in config["providers"]] == [a.base_url, b.base_url]
    twin = Srv("ladder-m", "http://10.0.0.2:8000/v1")  # the same model on another endpoint keeps its own label
    labels = [p["label"] for p in safety.safety_config([a, twin], [])["providers"]]
    assert labels == [f"ladder-m@{a.base_url}", f"ladder-m@{twin.base_url}"]


def test_models_must_name_two_models_that_exist(tmp_path):
    class Srv:
        model, base_url = "ladder-m", "http://127.0.0.1:8000/v1"

    with pytest.raises(errors.ConfigError, match="names one model"):
        safety.check_safety(Srv(), sets=["advbench"], models=["ladder-m"], run_dir=tmp_path / "never")
    with pytest.raises(errors.UnknownModelError, match="no-such-model"):  # refused before any server starts
        safety.check_safety(None, sets=["advbench"], models=["no-such-model", "ladder-m"], run_dir=tmp_path / "never")
    assert not (tmp_path / "never").exists()


class ServesAdapters:
    """A server handle that also serves LoRA adapters (what for_model does, without the HTTP request)."""

    def __init__(self, model, adapters=(), base_url="http://127.0.0.1:8766/v1"):
        self.model, self.adapters, self.base_url = model, list(adapters), base_url
        self.left = 0

    def for_model(self, name):
        if name not in self.adapters:
            raise errors.ConfigError(f"{name} is not served here")
        return ServesAdapters(name, base_url=self.base_url)

    def stop(self):
        self.left += 1


def test_a_compared_adapter_of_the_server_at_hand_is_asked_there_not_on_a_server_of_its_own(monkeypatch):
    import contextlib

    from evalkit.safety.run import _servers

    start = importlib.import_module("evalkit.serve.start")

    started = []
    monkeypatch.setattr(start, "serve", lambda model, **kw: started.append(model) or ServesAdapters(model,
                                                                                                 base_url="new"))
    srv = ServesAdapters("smollm2-135m", adapters=["smollm2-135m-safety"])
    with contextlib.ExitStack() as stack:
        servers = _servers(srv, [srv, "smollm2-135m-safety", "ladder-m"], stack, echo=False)
        assert [(s.model, s.base_url) for s in servers] == [
            ("smollm2-135m", srv.base_url), ("smollm2-135m-safety", srv.base_url), ("ladder-m", "new")]
        assert started == ["ladder-m"]  # only the model the server at hand does not serve got a server
    assert [s.left for s in servers] == [0, 1, 1]  # the handles made here are left at the end, srv is not
