"""One notebook executed by papermill in its own kernel, whose output goes to a log file, never raising for a cell.

``kernel_config`` is the kernel settings (local sockets encrypted where pyzmq can, the kernel's own output in a
log); ``execute_notebook`` runs one notebook and returns its status record for ``run.json``.
"""

from __future__ import annotations

import functools
import time
from datetime import datetime
from pathlib import Path

from evalkit.pipeline.profiles import notebooks_dir


def kernel_config(log_file: Path | None = None):
    """Kernel settings for papermill: CurveZMQ encryption of the kernel's local sockets where pyzmq has it.

    ipykernel warns at every start that a TCP kernel without encryption is readable by anyone on the machine;
    "auto" gives the kernel keys when its kernelspec says it can use them, which silences the warning by fixing
    its cause. ``log_file``: the kernel process's own output (ipykernel's log, not the cells' output, which the
    notebook keeps) goes there instead of this process's terminal, where a kernel stopped in the middle of a
    cell would print its shutdown errors.
    """
    import zmq
    from traitlets.config import Config

    config = Config({"KernelManager": {"transport_encryption": "auto"}}) if zmq.has("curve") else Config()
    if log_file is not None:
        config["NotebookClient"] = Config({"kernel_manager_class": _logged_kernel_manager()})
        config["LoggedKernelManager"] = Config({"log_file": str(log_file)})
    return config


@functools.lru_cache(maxsize=1)
def _logged_kernel_manager():
    from jupyter_client import AsyncKernelManager
    from traitlets import Unicode

    class LoggedKernelManager(AsyncKernelManager):
        """A kernel manager whose kernels write their own stdout and stderr to ``log_file``."""

        log_file = Unicode("", config=True)

        async def _async_launch_kernel(self, kernel_cmd, **kw):
            if not self.log_file:
                return await super()._async_launch_kernel(kernel_cmd, **kw)
            with open(self.log_file, "ab") as log:  # the kernel keeps its own copy of the descriptor
                kw.setdefault("stdout", log)
                kw.setdefault("stderr", log)
                return await super()._async_launch_kernel(kernel_cmd, **kw)

    return LoggedKernelManager


def execute_notebook(name: str, out_dir: Path, parameters: dict, echo: bool = True) -> dict:
    """Run one notebook with papermill; return its status record (never raises for a failing cell)."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    source = notebooks_dir() / f"{name}.ipynb"
    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / f"{name}.ipynb"
    start = time.monotonic()
    record = {"output": str(output), "parameters": parameters, "started": datetime.now().isoformat(timespec="seconds")}
    try:
        papermill.execute_notebook(
            str(source), str(output), parameters=parameters, kernel_name="python3", cwd=str(notebooks_dir()),
            progress_bar=False, log_output=False, request_save_on_cell_execute=True,
            config=kernel_config(out_dir / f"{name}.kernel.log"),
        )
        record.update(status="ok")
    except PapermillExecutionError as exc:
        message = f"cell {exc.cell_index}: {exc.ename}: {exc.evalue}".strip()
        record.update(status="failed", error=message[:2000])
    except Exception as exc:  # a kernel that died, a notebook that could not be read
        record.update(status="failed", error=f"{type(exc).__name__}: {exc}"[:2000])
    record["duration_s"] = round(time.monotonic() - start, 1)
    kernel_log = out_dir / f"{name}.kernel.log"
    if kernel_log.exists() and kernel_log.stat().st_size == 0:
        kernel_log.unlink()
    elif kernel_log.exists():
        record["kernel_log"] = str(kernel_log)
    if echo:
        extra = f" ({record['error'].splitlines()[0]})" if record["status"] == "failed" else ""
        print(f"[evalkit] {name}: {record['status']} in {record['duration_s']} s{extra}", flush=True)
    return record
