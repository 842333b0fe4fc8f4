"""Regenerate tests/fixtures/lmeval/ from a REAL lm-eval run against a running server.

    .venv/bin/python scripts/make_accuracy_fixture.py --base-url http://127.0.0.1:8000/v1

Runs ``evalkit.accuracy.evaluate`` on the embedded model with MMLU-Pro (multiple choice and chain of thought),
the FAQ (multiple choice and open answers), 2 questions per task and 1 few-shot example (so that the context
filter drops some MMLU-Pro categories on the 512-token model), then copies into the fixture folder:
lm-eval's two results_*.json files unchanged, the samples_*.jsonl files of a few tasks unchanged, the task
YAMLs and data evalkit prepared for those tasks, and result.json (run_dir set to "."; samples_files limited
to the copied files). The unit tests parse these files; nothing in them is edited by hand.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evalkit.accuracy import evaluate  # noqa: E402
from evalkit.serve import serve  # noqa: E402

OUT = ROOT / "tests" / "fixtures" / "lmeval"
KEEP = ("faq_mc", "faq_open", "mmlu_pro_mc_biology", "mmlu_pro_mc_history", "mmlu_pro_cot_philosophy")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--model", default="stories260k")
    args = parser.parse_args()
    srv = serve(args.model, base_url=args.base_url)
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        result = evaluate(srv, ["mmlu_pro_mc", "faq_mc", "mmlu_pro_cot", "faq_open"], limit=2, num_fewshot=1,
                          max_gen_toks=24, run_dir=run, echo=False)
        missing = [t for t in KEEP if t not in result.samples_files]
        if missing:
            raise SystemExit(f"these tasks did not run, pick others for KEEP: {missing}")
        if OUT.exists():
            shutil.rmtree(OUT)
        OUT.mkdir(parents=True)
        for rel in result.results_files.values():
            _copy(run, rel)
        for task in KEEP:
            _copy(run, result.samples_files[task])
            for endpoint in ("completions", "chat"):
                folder = run / "tasks" / endpoint / task
                if folder.exists():  # data paths made relative to the YAML, as in data/tasks
                    target = OUT / "tasks" / endpoint / task
                    shutil.copytree(folder, target)
                    for path in target.glob("*.yaml"):
                        path.write_text(path.read_text().replace(f"{folder}/", ""))
        data = json.loads((run / "result.json").read_text())
        data["run_dir"] = "."
        data["samples_files"] = {k: v for k, v in data["samples_files"].items() if k in KEEP}
        data["env"] = {k: data["env"].get(k) for k in ("device", "cpu", "cpu_cores", "lm_eval") if k in data["env"]}
        (OUT / "result.json").write_text(json.dumps(data, indent=2))
    size = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"wrote {OUT.relative_to(ROOT)} ({size / 1024:.0f} KiB)")


def _copy(run: Path, rel: str) -> None:
    target = OUT / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(run / rel, target)


if __name__ == "__main__":
    main()
