"""Regenerate tests/fixtures/promptfoo/format/ from real promptfoo runs against a running server.

    .venv/bin/python scripts/make_format_fixture.py [BASE_URL]    # default http://127.0.0.1:8000/v1

Four runs, each kept as its promptfooconfig.yaml and out.json:
- ``both``: evalkit's generated config, 2 extraction items and 1 IFEval prompt, structured off and on (compact);
- ``whitespace_any``: 1 extraction item, structured on with plain ``response_format`` (the endless whitespace);
- ``own``: a learner-style config without evalkit's metadata: plain ``is-json`` checks, one provider that
  constrains the answer to "yes"/"no" (valid JSON that can still fail a ``const`` schema);
- ``echo``: promptfoo's ``echo`` provider returns canned answers, judged by evalkit's assertions: IFEval's
  code-fence rule, valid JSON that breaks the schema, and text that is not JSON.
"""

import shutil
import sys
from pathlib import Path

from evalkit import fmt
from evalkit.promptfoo import provider, run_promptfoo, write_config
from evalkit.serve import attach
from evalkit.settings import get_settings

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "promptfoo" / "format"


def own_config(srv) -> dict:
    schema = {"type": "string", "enum": ["yes", "no"]}
    yes_no = {"response_format": {"type": "json_schema", "json_schema": {"name": "yes_no", "schema": schema}}}
    return {
        "description": "a learner's own format checks",
        "prompts": ["{{question}} Answer yes or no, as JSON."],
        "providers": [provider(srv, max_tokens=24, label="plain"),
                      provider(srv, max_tokens=24, label="yes-no grammar", passthrough=yes_no)],
        "tests": [
            {"description": "sky", "vars": {"question": "Is the sky green?"},
             "assert": [{"type": "is-json"}, {"type": "is-json", "value": {"const": "no"}}]},
            {"description": "grass", "vars": {"question": "Is grass green?"},
             "assert": [{"type": "is-json"}, {"type": "is-json", "value": {"const": "yes"}}]},
        ],
    }


def echo_config() -> dict:
    """Canned answers (the echo provider returns the prompt) judged by the assertions evalkit generates."""
    schema = fmt.read_schema(fmt.format_dir() / "schemas" / "character.json")
    cases = [
        (fmt.FormatItem("ifeval", "fenced", "x"), '```json\n{"pros": ["pay"], "cons": ["rain"]}\n```'),
        (fmt.FormatItem("ifeval", "bare", "x"), '{"nickname": "Staff"}'),
        (fmt.FormatItem("ifeval", "prose", "x"), "Here is some JSON: {\"a\": 1}"),
        (fmt.FormatItem("extraction", "valid", "x", schema, "character.json"),
         '{"name":"Lily","age":5,"likes":"ball"}'),
        (fmt.FormatItem("extraction", "too-old", "x", schema, "character.json"),
         '{"name":"Lily","age":500,"likes":"ball"}'),
        (fmt.FormatItem("extraction", "cut-off", "x", schema, "character.json"), '{"name":"Lily","age":5,"lik'),
    ]
    tests = [{"description": f"{item.set}/{item.item}", "vars": {"answer": answer},
              "metadata": {"set": item.set, "item": item.item, "structured": False, "whitespace": None,
                           "schema_file": item.schema_file},
              "assert": fmt.assertions(item)} for item, answer in cases]
    return {"description": "evalkit format assertions on canned answers", "prompts": ["{{answer}}"],
            "providers": [{"id": "echo", "label": "echo"}], "tests": tests}


def main(base_url: str) -> None:
    srv = attach(base_url, "stories260k")
    items = fmt.load_items("extraction", limit=2) + fmt.load_items("ifeval", limit=1)
    configs = {
        "both": fmt.format_config(srv, items, structured="both", max_tokens=get_settings().format_max_tokens),
        "whitespace_any": fmt.format_config(srv, items[:1], structured=True, max_tokens=24, whitespace="any"),
        "own": own_config(srv),
        "echo": echo_config(),
    }
    work = OUT.parent / "_format_work"
    for name, config in configs.items():
        path = write_config(config, work / name / "promptfooconfig.yaml")
        run = run_promptfoo(path, run_dir=work / name / "run", srv=srv, echo=False)
        target = OUT / name
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(run.output_path, target / "out.json")
        shutil.copy(path, target / "promptfooconfig.yaml")
        print(name, run.returncode)
        print(run.tests()[["description", "output", "passed", "reason"]].to_string(max_colwidth=60))
    shutil.rmtree(work)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000/v1")
