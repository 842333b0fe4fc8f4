"""The by-hand commands: what they print, and the mistakes a by-hand run most often meets.

A config edited into invalid YAML and a server that is gone are each stopped before the tool starts, with one
message and its fix.
"""

import socket

import pytest
import yaml

from evalkit import byhand
from evalkit.errors import ServerUnreachableError, TaskFileError

pytestmark = pytest.mark.unit


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # free now, and nobody listens on it


def _config(tmp_path, port):
    config = {
        "prompts": ["{{question}}"],
        "providers": [{"id": "openai:chat:smollm2-135m", "label": "smollm2-135m",
                       "config": {"apiBaseUrl": f"http://127.0.0.1:{port}/v1", "max_tokens": 8}}],
        "tests": [{"vars": {"question": "Hello?"}, "assert": [{"type": "is-json"}]}],
    }
    path = tmp_path / "run" / "promptfooconfig.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_copy_config_edits_a_copy_and_keeps_the_original(tmp_path):
    original = _config(tmp_path, 8000)
    before = original.read_text()
    copy = byhand.copy_config(original, tmp_path / "edited", edit=lambda c: c.setdefault("defaultTest", {}).setdefault(
        "assert", []).append({"type": "latency", "threshold": 2000}))
    assert original.read_text() == before
    assert yaml.safe_load(copy.read_text())["defaultTest"]["assert"] == [{"type": "latency", "threshold": 2000}]
    with pytest.raises(Exception, match="would write over"):
        byhand.copy_config(original, original.parent)


def test_promptfoo_command_prints_what_a_terminal_needs(tmp_path):
    config = _config(tmp_path, 8000)
    hand = byhand.promptfoo(config, tmp_path / "by-hand")
    line = str(hand)
    assert line.startswith(f"cd {config.parent} && env ")
    assert "PROMPTFOO_CONFIG_DIR=" in line and f"eval -c {config}" in line
    assert f"-o {tmp_path / 'by-hand' / 'out.html'}" in line and "--no-share" in line
    assert hand.base_url == "http://127.0.0.1:8000/v1" and hand.model == "smollm2-135m"
    assert "view -n" in byhand.view_command(tmp_path / "by-hand")


def test_a_config_edited_into_invalid_yaml_stops_before_promptfoo_with_the_line(tmp_path):
    original = _config(tmp_path, 8000)
    copy = byhand.copy_config(original, tmp_path / "edited")
    hand = byhand.promptfoo(copy)
    copy.write_text(copy.read_text().replace("tests:", "tests:\n  - vars: {question: [unclosed\n"))
    with pytest.raises(TaskFileError, match=r"line \d+, column \d+: invalid YAML") as err:
        hand.run()
    assert "Fix: correct the YAML at that line." in str(err.value)
    assert yaml.safe_load(original.read_text())["tests"]  # the original still parses, untouched
    assert not (tmp_path / "edited" / "out.json").exists()


def test_a_by_hand_run_against_a_server_that_is_gone_says_so_and_starts_nothing(tmp_path):
    hand = byhand.promptfoo(_config(tmp_path, _closed_port()), tmp_path / "by-hand")
    with pytest.raises(ServerUnreachableError, match="Nobody answers") as err:
        hand.run()
    assert "Fix: start a server with `evalkit serve`" in str(err.value)
    assert not (tmp_path / "by-hand" / "promptfoo.log").exists()


def test_lm_eval_by_hand_reruns_the_recorded_command_into_another_folder(tmp_path):
    from evalkit.accuracy import AccuracyResult

    recorded = ["lm-eval", "run", "--model", "local-completions", "--model_args",
                "model=smollm2-135m,base_url=http://127.0.0.1:8000/v1/completions,num_concurrent=4",
                "--tasks", "faq_mc", "--output_path", str(tmp_path / "run" / "lmeval"), "--log_samples"]
    result = AccuracyResult(run_dir=str(tmp_path / "run"), model="smollm2-135m", base_url="http://127.0.0.1:8000/v1",
                            tasks=["faq_mc"], commands=[recorded])
    hand = byhand.lm_eval(result, tmp_path / "by-hand")
    assert hand.argv[hand.argv.index("--output_path") + 1] == str(tmp_path / "by-hand" / "lm-eval")
    assert hand.base_url == "http://127.0.0.1:8000/v1" and hand.model == "smollm2-135m"
    assert recorded[recorded.index("--output_path") + 1] == str(tmp_path / "run" / "lmeval")  # the record is kept
    assert "HF_HUB_OFFLINE=1" in str(hand)


def test_show_html_links_a_copy_the_notebook_folder_serves_and_names_a_missing_one(tmp_path):
    page = tmp_path / "run" / "by-hand" / "out.html"
    page.parent.mkdir(parents=True)
    page.write_text('<html><body><p class="x">a & b</p></body></html>' + "x" * 200_000)
    html = byhand.show_html(page, reports_dir=tmp_path / "nb" / "reports").data
    copy = tmp_path / "nb" / "reports" / "run-by-hand-out.html"
    assert copy.read_text() == page.read_text()  # the page lies where JupyterLab serves it
    assert f'href="{copy.as_posix()}"' in html and "(195 KB)" in html and str(page) in html
    assert len(html) < 1000 and "a &amp; b" not in html  # linked, not embedded
    with pytest.raises(TaskFileError, match="does not exist"):
        byhand.show_html(tmp_path / "missing.html")


def test_a_by_hand_guidellm_shows_its_result_tables_and_keeps_its_whole_console_in_the_log(tmp_path, capsys):
    import sys
    import textwrap

    console = textwrap.dedent("""\
        \x1b[34mℹ The following environment variables are set and will be used by GuideLLM\x1b[0m
          {'kind': 'openai_http', 'target': 'http://127.0.0.1:8000', 'model': 'smollm2-135m'}
        ✔ Setup complete, starting benchmarks...
        26-12-06 03:45:39|INFO     |guidellm.benchmark.progress:_log_update:420 - Benchmark 1 (synchronous): started
        ℹ Request Latency Statistics (Completed Requests)
        |=============|===========|
        | synchronous | 1.4 ± 0.1 |
        * confidence interval unavailable at this sample size
        ✔ Benchmarking complete, generated 1 benchmark(s)
        """)
    script = tmp_path / "fake.py"
    script.write_text(f"import sys\nsys.stdout.write({console!r})\n")
    out = tmp_path / "by-hand" / "benchmarks.json"
    hand = byhand.ByHand("guidellm", [sys.executable, str(script)], tmp_path, outputs=[out],
                         console=byhand.guidellm_tables)
    assert hand.run().returncode == 0
    shown = capsys.readouterr().out
    assert "ℹ Request Latency Statistics" in shown and "| synchronous | 1.4 ± 0.1 |" in shown
    assert "* confidence interval" in shown and "✔ Benchmarking complete" in shown
    assert "openai_http" not in shown and "_log_update" not in shown and "\x1b[" not in shown
    assert f"its whole console: {out.parent / 'guidellm.log'}" in shown
    assert "'target': 'http://127.0.0.1:8000'" in (out.parent / "guidellm.log").read_text()  # all of it is kept
