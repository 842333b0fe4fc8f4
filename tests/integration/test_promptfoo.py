"""promptfoo for real against the session server: results, exit code 100 as a result, no outbound network."""

import pytest

from evalkit import errors
from evalkit.promptfoo import provider, run_promptfoo, write_config
from evalkit.promptfoo.output import outbound


def _config(server, assertion):
    return {
        "prompts": ["Once upon a time, {{who}}"],
        "providers": [provider(server, endpoint="completion", max_tokens=8)],
        "tests": [{"vars": {"who": "there was a girl"}, "assert": [assertion]},
                  {"vars": {"who": "a dog"}, "assert": [{"type": "is-json"}]}],
    }


def test_failed_assertions_are_results_and_nothing_leaves_the_machine(server, run_dir):
    path = write_config(_config(server, {"type": "icontains", "value": "she"}), run_dir / "promptfooconfig.yaml")
    run = run_promptfoo(path, run_dir=run_dir / "out", srv=server, audit_network=True, echo=False)
    assert run.returncode == 100  # one assertion failed: promptfoo's "failures" exit code, not a crash
    tests = run.tests()
    assert list(tests["passed"]) == [True, False]
    assert all(tests["output"].str.len() > 0)
    connections = run.connections()
    port = int(server.base_url.rsplit(":", 1)[1].split("/")[0])
    # the audit sees promptfoo's requests to the model server, so an outbound connection would show up too
    assert ((connections["kind"] == "connect") & (connections["port"] == port)).sum() >= 2
    assert outbound(connections).empty, outbound(connections).to_string()
    assert (run_dir / "out" / "promptfoo.log").exists() and (run_dir / "out" / ".promptfoo").is_dir()


def test_unknown_assertion_type_names_the_line(server, run_dir):
    path = write_config(_config(server, {"type": "is-jsonn"}), run_dir / "promptfooconfig.yaml")
    with pytest.raises(errors.TaskFileError) as info:
        run_promptfoo(path, run_dir=run_dir / "out", srv=server, echo=False)
    assert "is-jsonn" in str(info.value) and "line" in str(info.value)
