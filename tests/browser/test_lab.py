"""JupyterLab in headless Chromium: run notebook 01, change a widget, rerun the panel, see the table change.

The notebook gets the session server's parameters the way papermill would inject them (a cell after the
`parameters` cell), is opened in a real JupyterLab, and is driven through the page like a learner would.
A screenshot is saved in the test's output folder.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from papermill.parameterize import parameterize_notebook

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on a free port serving a temp folder; yields (base URL, token, folder)."""
    root = tmp_path / "lab"
    root.mkdir()
    port, token = _free_port(), "evalkit-browser-test"
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}", "--ip=127.0.0.1",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
               "--LabApp.news_url=", "--ServerApp.disable_check_xsrf=False"]
    log = open(tmp_path / "lab.log", "w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                               env=dict(os.environ, JUPYTER_PLATFORM_DIRS="1"))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
            break
        except OSError:
            assert process.poll() is None, (tmp_path / "lab.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "JupyterLab did not start in 120 s"
            time.sleep(0.5)
    yield url, token, root
    os.killpg(process.pid, 15)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
    log.close()


def run_all_cells(page) -> None:
    """Kernel > Restart Kernel and Run All Cells, accepting JupyterLab's dialogs, until a cell is executing.

    Restarting makes sure the page is connected to a live kernel before the cells are sent; the command is
    repeated once if no cell starts within 60 s.
    """
    for _attempt in range(2):
        page.click(".lm-MenuBar-itemLabel:text-is('Kernel')", timeout=30_000)
        page.click(".lm-Menu-itemLabel:text-matches('^Restart Kernel and Run All')", timeout=30_000)
        for _ in range(60):
            if page.locator(".jp-Dialog .jp-mod-accept").count():  # "Restart kernel?" or "Select kernel"
                page.click(".jp-Dialog .jp-mod-accept")
            if page.locator(".jp-InputPrompt:text-matches('\\[[*0-9]+\\]')").count():
                return
            page.wait_for_timeout(1000)
    raise AssertionError("JupyterLab did not start running the notebook's cells")


def wait_all_cells_ran(page) -> None:
    """Wait until the notebook's last code cell has an execution count (cells run in order, so all of them ran)."""
    page.wait_for_function(
        "() => { const p = document.querySelectorAll('.jp-CodeCell .jp-InputPrompt');"
        " return p.length > 0 && /\\[\\d+\\]/.test(p[p.length - 1].innerText); }",
        timeout=300_000)


def diagnosis(page, tmp_path: Path) -> str:
    """What the panel and JupyterLab show, for a failure message: status line, progress log, server log tail."""

    def text(selector: str) -> str:
        return page.inner_text(selector) if page.locator(selector).count() else "(not on the page)"

    log = tmp_path / "lab.log"
    return (f"status: {text('.evalkit-perf-status')}\nkernel: "
            f"{page.get_attribute('.jp-Notebook-ExecutionIndicator', 'data-status')}\n"
            f"panel log (tail):\n{text('.evalkit-perf-log')[-2000:]}\n"
            f"JupyterLab log (tail):\n{log.read_text(errors='replace')[-3000:] if log.exists() else '(none)'}")


def test_notebook_01_widget_rerun(lab, real_server, tmp_path):
    from playwright import sync_api as playwright

    url, token, root = lab
    nb = nbformat.read(NOTEBOOKS / "01_performance.ipynb", as_version=4)
    for cell in nb.cells:
        cell.metadata.setdefault("tags", [])
    nb.metadata.setdefault("papermill", {})
    # the real model decodes about 30 tokens/s alone, less with Chromium and JupyterLab on the same 2 cores: the
    # notebook's runs stop after a number of requests, and the panel's loads last 10 s
    params = {"MODEL": real_server.model, "BASE_URL": real_server.base_url, "RUN_DIR": str(tmp_path / "results"),
              "PROFILE": "concurrent", "RATES": [1], "MAX_REQUESTS": 2, "MAX_SECONDS": 120.0, "OUTPUT_TOKENS": 32,
              "GRID_PROMPT_TOKENS": [32], "GRID_OUTPUT_TOKENS": [16], "GRID_REQUESTS": 1, "WORKLOADS": ["chat"],
              "WORKLOAD_RATES": [1], "WORKLOAD_REQUESTS": 1, "WORKLOAD_TOKENS": 96, "WORKLOAD_SECONDS": None,
              "PANEL_SECONDS": 10.0, "GOODPUT": False}
    nb = parameterize_notebook(nb, params, report_mode=False)
    nbformat.write(nb, root / "01_performance.ipynb")

    # start the notebook's kernel through the server's REST API, as opening it would: JupyterLab then attaches
    # to it instead of asking which kernel to start
    request = urllib.request.Request(
        f"{url}/api/sessions", method="POST", headers={"Authorization": f"token {token}",
                                                       "Content-Type": "application/json"},
        data=json.dumps({"path": "01_performance.ipynb", "name": "01_performance.ipynb", "type": "notebook",
                         "kernel": {"name": "python3"}}).encode())
    urllib.request.urlopen(request, timeout=60).read()

    shot = Path(os.environ.get("EVALKIT_BROWSER_ARTIFACTS", tmp_path)) / "notebook01-panel.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(f"{url}/lab/tree/01_performance.ipynb?token={token}")
            page.wait_for_selector(".jp-Notebook", timeout=120_000)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
            run_all_cells(page)
            page.wait_for_selector(".evalkit-perf-run", timeout=600_000)
            wait_all_cells_ran(page)

            def run_panel(n: int) -> tuple[str, str]:
                """Click Run sweep, wait for run n to finish or fail, return (status, results table)."""
                page.locator(".evalkit-perf-run").click()
                page.wait_for_function(
                    "(n) => { const s = document.querySelector('.evalkit-perf-status');"
                    " return s && (s.innerText.startsWith(`Run ${n}:`) || !!s.querySelector('[style*=crimson]')); }",
                    arg=n, timeout=600_000)
                status = page.inner_text(".evalkit-perf-status")
                assert status.startswith(f"Run {n}:"), f"run {n} of the panel failed: {status}"
                return status, page.inner_text(".evalkit-perf-table .evalkit-perf-results")

            first_status, first = run_panel(1)
            slider = page.locator(".widget-slider", has_text="output tokens")
            readout = slider.locator(".widget-readout")
            readout.click()
            page.keyboard.press("Control+A")
            page.keyboard.type("7")
            page.keyboard.press("Enter")
            second_status, second = run_panel(2)
            page.screenshot(path=str(shot), full_page=False)
        except Exception:
            page.screenshot(path=str(shot.with_name("notebook01-failure.png")), full_page=False)
            print(diagnosis(page, tmp_path))  # shown with the failure
            raise
        finally:
            browser.close()
    assert "32 output tokens" in first_status and "7 output tokens" in second_status
    assert first != second  # the table was redrawn from the second run's results
    assert shot.exists() and shot.stat().st_size > 10_000
