"""Regenerate tests/fixtures/promptfoo/smoke/ from a real promptfoo run against a running server.

    .venv/bin/python scripts/make_promptfoo_fixture.py [BASE_URL]    # default http://127.0.0.1:8000/v1
"""

import shutil
import sys
from pathlib import Path

from evalkit.promptfoo import provider, run_promptfoo, write_config
from evalkit.serve import attach

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "promptfoo" / "smoke"


def main(base_url: str) -> None:
    srv = attach(base_url, "stories260k")
    config = {
        "description": "evalkit promptfoo smoke fixture",
        "prompts": ["Once upon a time, {{who}}"],
        "providers": [provider(srv, endpoint="completion", max_tokens=12)],
        "tests": [
            {"description": "a story goes on", "vars": {"who": "there was a girl"},
             "assert": [{"type": "icontains", "value": "she"}]},
            {"description": "not JSON", "vars": {"who": "a dog"}, "assert": [{"type": "is-json"}]},
            {"description": "never empty", "vars": {"who": "a cat"},
             "assert": [{"type": "javascript", "value": "output.length > 0"}]},
        ],
    }
    work = OUT.parent / "_work"
    path = write_config(config, work / "promptfooconfig.yaml")
    run = run_promptfoo(path, run_dir=work / "run", srv=srv, echo=False)
    OUT.mkdir(parents=True, exist_ok=True)
    shutil.copy(run.output_path, OUT / "out.json")
    shutil.copy(path, OUT / "promptfooconfig.yaml")
    print(run.tests()[["description", "output", "passed"]])
    shutil.rmtree(work)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000/v1")
