"""Run ``guidellm`` so that every benchmark it finishes is on disk at once, not only at the end of the run.

Run as a script (``python .../guidellm_partial.py run --backend ...``: GuideLLM's own arguments), not imported:
it must not import evalkit. GuideLLM 0.8 writes its JSON report when the whole run is over; a run stopped
before (its server died, it hung, Ctrl-C) leaves nothing of the benchmarks it had finished. Here, each time a
benchmark is finished, the report so far (GuideLLM's own format, the finished benchmarks only) is written to
``benchmarks.partial.json`` in the working directory, whole or not at all. Everything else is GuideLLM's
command line unchanged; :func:`evalkit.perf.run.sweep` reads the partial report when there is no full one.
SIGTERM ends GuideLLM's whole process group, its workers too, also when evalkit itself was killed.
"""

import os
import sys

# run as a script, this folder comes first on sys.path, where guidellm.py would hide the guidellm package
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

PARTIAL = "benchmarks.partial.json"


def _record_each_benchmark() -> None:
    from guidellm.benchmark import entrypoints
    from guidellm.benchmark.benchmarker import Benchmarker

    reports = []
    report_class = entrypoints.GenerativeBenchmarksReport

    class RecordedReport(report_class):
        def __init__(self, **data):
            super().__init__(**data)
            reports.append(self)

    original = Benchmarker.run

    async def run(self, *args, **kwargs):
        async for benchmark in original(self, *args, **kwargs):
            yield benchmark
            # the caller has added the benchmark to its report by the time it asks for the next one
            if reports and reports[-1].benchmarks:
                staging = f".{PARTIAL}.{os.getpid()}"
                reports[-1].save_file(staging, type_="json")
                os.replace(staging, PARTIAL)

    entrypoints.GenerativeBenchmarksReport = RecordedReport
    Benchmarker.run = run


def _end_the_group_on_sigterm() -> None:
    """SIGTERM ends the whole process group: GuideLLM's worker processes would otherwise outlive it.

    SIGTERM comes from evalkit stopping the run, or is the parent-death signal when evalkit itself was killed.
    """
    import signal

    signal.signal(signal.SIGTERM, lambda *_: os.killpg(os.getpgid(0), signal.SIGKILL))


if __name__ == "__main__":
    if os.getpgid(0) == os.getpid():  # the leader of its own group (evalkit starts it so): the group is the run
        _end_the_group_on_sigterm()
    _record_each_benchmark()
    from guidellm.__main__ import cli

    sys.argv[0] = "guidellm"
    cli()
