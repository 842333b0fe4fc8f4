"""Regenerate tests/fixtures/guidellm/sweep.json.gz: GuideLLM's JSON report of a real small sweep, gzipped.

Runs ``evalkit.perf.sweep`` (profile sweep: synchronous, throughput and two constant rates, 3 s each, 64 prompt +
32 output tokens, at most 8 requests in flight) against a running server and stores GuideLLM's report unchanged,
only gzipped (the JSON is ~0.5 MB, mostly per-request statistics), in the fixture folder. The unit tests read
it; rerun this script when the pinned GuideLLM changes. On a busy machine, check that every benchmark completed
requests (the table printed at the end) and rerun if one did not.

    .venv/bin/python scripts/make_perf_fixture.py [--base-url http://127.0.0.1:8000/v1]

Without --base-url it uses EVALKIT_BASE_URL, or attaches to (or starts) the embedded model's server.
"""

from __future__ import annotations

import argparse
import gzip
import tempfile
from pathlib import Path

from evalkit.perf import REPORT_JSON, sweep
from evalkit.serve import serve

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "guidellm"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default=None, help="server to measure (default: EVALKIT_BASE_URL or serve())")
    parser.add_argument("--model", default="stories260k")
    args = parser.parse_args()
    srv = serve(args.model, base_url=args.base_url)
    with tempfile.TemporaryDirectory() as tmp:
        result = sweep(srv, profile="sweep", sweep_size=4, max_seconds=3, max_concurrency=8, prompt_tokens=64,
                       output_tokens=32, html=False, run_dir=Path(tmp))
        FIXTURES.mkdir(parents=True, exist_ok=True)
        target = FIXTURES / "sweep.json.gz"
        with gzip.GzipFile(target, "wb", mtime=0) as fh:
            fh.write((Path(tmp) / REPORT_JSON).read_bytes())
    print(result.summary().round(2).to_string())
    print(f"wrote {target} ({target.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
