"""papermill helpers for the notebook tests."""

import json
from pathlib import Path

import papermill
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def _runner(srv, tmp_path):
    def _run(name: str, **parameters) -> Path:
        out = tmp_path / name
        params = {"MODEL": srv.model, "BASE_URL": srv.base_url, "RUN_DIR": str(tmp_path / "results")}
        params.update(parameters)
        papermill.execute_notebook(
            str(NOTEBOOKS / name), str(out), parameters=params, cwd=str(NOTEBOOKS), kernel_name="python3",
            progress_bar=False, request_save_on_cell_execute=False, execution_timeout=900,
        )
        return out

    return _run


@pytest.fixture
def execute(real_server, tmp_path):
    """Run a notebook against the session's real model server (smollm2-135m); returns the executed notebook."""
    return _runner(real_server, tmp_path)


@pytest.fixture
def execute_small(server, tmp_path):
    """Run a notebook against the session's embedded-model server (stories260k); returns the executed notebook.

    For a notebook whose test checks the steps, not what the model knows: seconds where the real model takes minutes.
    """
    return _runner(server, tmp_path)


@pytest.fixture
def outputs():
    """The text of an executed notebook's outputs (stream text and text/plain results), joined."""

    def _text(path: Path) -> str:
        cells = json.loads(Path(path).read_text())["cells"]
        return "\n".join(
            "".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
            for c in cells if c["cell_type"] == "code" for o in c.get("outputs", [])
        )

    return _text
