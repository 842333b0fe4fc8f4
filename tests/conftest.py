"""Shared fixtures: one real vLLM server per test session, and a run folder per test.

Tests are split by cost and marked by folder (unit, integration, notebooks, browser, faults). The session server is
started on EVALKIT_TEST_PORT (default 8765) with runs under a session temp folder, and stopped at the end.
Set EVALKIT_TEST_BASE_URL to attach to a server that is already running instead (faster while developing).
"""

from __future__ import annotations

import collections
import os
from pathlib import Path

import pytest

from evalkit.serve import Server, serve
from evalkit.settings import Settings

MARKERS = {"unit", "integration", "notebooks", "browser", "faults"}
# what the fault suite counts, printed at the end of the run; "processes left" and "leaks found" are defects
# wherever they are not 0
FIGURES = ("cycles run", "faults injected", "bad inputs tried", "files scanned for secrets",
           "seconds to notice a hung server", "rooms run", "room calls", "room calls failed",
           "seconds to stop after last user", "benchmarks kept from killed sweeps", "processes left",
           "leaks found")
_FIGURES = pytest.StashKey[collections.Counter]()


def pytest_configure(config):
    config.stash[_FIGURES] = collections.Counter({name: 0 for name in FIGURES})


def pytest_terminal_summary(terminalreporter, config):
    counts = config.stash.get(_FIGURES, None)
    if not counts or not any(counts.values()):
        return
    terminalreporter.section("fault suite figures")
    for name in FIGURES:
        terminalreporter.write_line(f"{name:<34}{counts[name]:>6}")


@pytest.fixture(scope="session")
def figures(pytestconfig) -> collections.Counter:
    """The fault suite's counters (see FIGURES): tests add to them, the end of the run prints them."""
    return pytestconfig.stash[_FIGURES]


def pytest_collection_modifyitems(config, items):
    for item in items:
        folder = Path(str(item.fspath)).parent.name
        if folder in MARKERS:
            item.add_marker(getattr(pytest.mark, folder))


@pytest.fixture(scope="session")
def session_runs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="session")
def test_settings(session_runs) -> Settings:
    """Settings for tests: runs under a temp folder, the test port."""
    return Settings(runs_dir=session_runs, port=int(os.environ.get("EVALKIT_TEST_PORT", "8765")))


@pytest.fixture(scope="session")
def server(test_settings) -> Server:
    """The session's real server on the embedded model (started once, stopped at the end)."""
    url = os.environ.get("EVALKIT_TEST_BASE_URL")
    srv = serve("stories260k", base_url=url, settings=test_settings)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def real_server(test_settings) -> Server:
    """The session's real server on the real model, smollm2-135m, with its adapters (started once, on the next port).

    EVALKIT_TEST_REAL_BASE_URL attaches to one that is already running instead.
    """
    url = os.environ.get("EVALKIT_TEST_REAL_BASE_URL")
    srv = serve("smollm2-135m", base_url=url, port=test_settings.port + 1, settings=test_settings)
    srv.chat("Hello", max_tokens=8)  # the first request after a start is slow: not inside a measured run
    yield srv
    srv.stop()


@pytest.fixture
def run_dir(tmp_path) -> Path:
    path = tmp_path / "run"
    path.mkdir()
    return path
