"""papermill helpers for the notebook tests."""

from pathlib import Path

import papermill
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


@pytest.fixture
def execute(server, tmp_path):
    """Run a notebook against the session server; returns the executed notebook's path."""

    def _run(name: str, **parameters) -> Path:
        out = tmp_path / name
        params = {"MODEL": server.model, "BASE_URL": server.base_url, "RUN_DIR": str(tmp_path / "results")}
        params.update(parameters)
        papermill.execute_notebook(
            str(NOTEBOOKS / name), str(out), parameters=params, cwd=str(NOTEBOOKS), kernel_name="python3",
            progress_bar=False, request_save_on_cell_execute=False, execution_timeout=900,
        )
        return out

    return _run
