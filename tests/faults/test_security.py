"""Security: loopback by default, an API key every tool carries and the server demands, no secret in any file."""

import urllib.error
from pathlib import Path

import pytest
from pydantic import SecretStr

from evalkit import accuracy, errors, fmt, perf, proc
from evalkit.serve import attach, http_json, serve
from evalkit.serve.start import ExposedServerWarning
from evalkit.settings import get_settings, redact, reload_settings

KEY = "evalkit-fault-suite-key-5b1e0c"


def files_with(folder: Path, secrets: list[str]) -> tuple[int, list[str]]:
    """How many files under ``folder`` were read, and which hold one of ``secrets``."""
    scanned, found = 0, []
    for path in folder.rglob("*"):
        if path.is_file():
            scanned += 1
            data = path.read_bytes()
            found += [f"{path}: {s[:6]}..." for s in secrets if s.encode() in data]
    return scanned, found


@pytest.fixture
def keyed(monkeypatch, tmp_path):
    """Process-wide settings with an API key and a runs folder of this test's own."""
    monkeypatch.setenv("EVALKIT_API_KEY", KEY)
    monkeypatch.setenv("EVALKIT_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("EVALKIT_PORT", "8782")
    yield reload_settings()
    monkeypatch.undo()
    reload_settings()


def test_a_server_with_an_api_key_refuses_requests_without_it_and_every_tool_sends_it(keyed, tmp_path, figures):
    with serve("ladder-s", echo=False) as srv:
        url = f"{srv.base_url}/models"
        with pytest.raises(urllib.error.HTTPError) as refused:
            http_json(url, api_key="")  # no key: vLLM answers 401
        assert refused.value.code == 401
        with pytest.raises(urllib.error.HTTPError):
            http_json(url, api_key="a-wrong-key")
        wrong = keyed.model_copy(update={"api_key": SecretStr("a-wrong-key")})
        with pytest.raises(errors.ServerUnreachableError, match="HTTP 401: the server wants an API key"):
            attach(srv.base_url, settings=wrong)
        figures["faults injected"] += 2
        assert srv.healthy()  # evalkit's own requests carry the key

        swept = perf.sweep(srv, profile="synchronous", max_requests=4, max_seconds=None, warmup=0,
                           run_dir=tmp_path / "runs" / "perf", echo=False)
        assert swept.df["successful"].sum() >= 4 and swept.df["errored"].sum() == 0
        assert "api_key=***" in proc.shlex.join(swept.command)  # the command saved and shown is redacted
        scored = accuracy.evaluate(srv, ["faq_mc"], limit=2, run_dir=tmp_path / "runs" / "accuracy", echo=False)
        assert scored.df["accuracy"].notna().all() and (scored.df["n"] == 2).all()
        checked = fmt.check_format(srv, sets="extraction", limit=1, structured=False,
                                   run_dir=tmp_path / "runs" / "format", echo=False)
        assert len(checked.rows) == 1  # a refused request would have raised with the HTTP error
        config = (tmp_path / "runs" / "format" / "promptfooconfig.yaml").read_text()
        assert "apiKey" not in config  # promptfoo takes the key from its environment

    scanned, leaks = files_with(tmp_path / "runs", [KEY])
    figures["files scanned for secrets"] += scanned
    figures["leaks found"] += len(leaks)
    assert scanned > 20 and leaks == []


def test_redaction_covers_the_api_key_and_tokens_of_the_environment(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_faultSuiteToken0123")
    settings = get_settings().model_copy(update={"api_key": SecretStr(KEY)})
    text = f"guidellm run --backend api_key={KEY} HF_TOKEN=hf_faultSuiteToken0123"
    assert redact(text, settings) == "guidellm run --backend api_key=*** HF_TOKEN=***"


def test_a_server_bound_beyond_loopback_is_announced(monkeypatch, tmp_path):
    settings = get_settings().model_copy(update={"host": "0.0.0.0", "port": 8783, "runs_dir": tmp_path / "runs"})

    def refuse(*args, **kwargs):
        raise RuntimeError("not started in this test")

    monkeypatch.setattr(proc, "spawn", refuse)
    with pytest.warns(ExposedServerWarning, match=r"listen on 0\.0\.0\.0:8783, reachable from other machines and "
                                                  "without an API key"), pytest.raises(RuntimeError):
        serve("stories260k", settings=settings, echo=False)
    assert get_settings().host == "127.0.0.1"  # the default binds to loopback only
