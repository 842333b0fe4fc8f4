"""The machines a run is planned for: ``data/hardware.yaml`` (memory, bandwidth, price), and the one this is.

A row is a GPU type and count (``L4``, ``2xL4``, ``8xH100``) or a CPU machine. :func:`get_hardware` looks one up
by name; :func:`detect_hardware` reads the machine evalkit runs on (nvidia-smi's GPU name and memory, else the
CPU and its available memory). A GPU the table does not know is planned with the memory it reports, and says so.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import yaml

from evalkit.errors import ConfigError

GIB = 1024**3


@dataclass(frozen=True)
class Hardware:
    """One machine: its GPUs (none for a CPU machine), their memory and bandwidth, and an hourly price."""

    name: str
    description: str
    gpus: int = 0
    gpu_memory_gib: float | None = None  # per GPU
    bandwidth_gbs: float | None = None  # per GPU
    usd_per_hour: float | None = None
    example: str = ""
    nvidia_smi: str = ""
    source: str = ""
    memory_gib: float | None = None  # a CPU machine: memory available to servers (read when planning)
    note: str = ""  # how this row was obtained when it is not the table's (an unknown GPU, this CPU)

    @property
    def gpu(self) -> bool:
        return self.gpus > 0

    @property
    def total_gpu_memory_gib(self) -> float:
        return (self.gpu_memory_gib or 0.0) * self.gpus


def hardware_file() -> Path:
    from evalkit.settings import get_settings

    return get_settings().data_dir / "hardware.yaml"


@functools.lru_cache(maxsize=4)
def _load(path: Path) -> dict[str, Hardware]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"Cannot read the hardware table {path}: {exc}", fix="restore data/hardware.yaml from git.") \
            from None
    table = {}
    for name, row in data.items():
        try:
            table[str(name)] = Hardware(name=str(name), **row)
        except TypeError as exc:
            raise ConfigError(f"{path}: hardware row {name!r} is malformed ({exc}).",
                              fix="give it description, gpus and, for a GPU, gpu_memory_gib and bandwidth_gbs.") \
                from None
    return table


def hardware_table(path: Path | None = None) -> dict[str, Hardware]:
    """Every row of the hardware table by name."""
    return dict(_load(path or hardware_file()))


CPU_ALIASES = ("CPU", "cpu", "this-cpu")


def get_hardware(name: str | None = None) -> Hardware:
    """A row of the table by name (case-insensitive); ``"CPU"`` or None: the machine this runs on.

    Raises:
        ConfigError: an unknown name (the message lists the known ones).
    """
    if name is None:
        return detect_hardware()
    table = hardware_table()
    if name in CPU_ALIASES:
        return this_cpu()
    for key, row in table.items():
        if key.lower() == name.lower():
            return this_cpu(row) if not row.gpu else row
    raise ConfigError(f"Unknown hardware {name!r}.",
                      fix=f"use one of: CPU (this machine), {', '.join(table)}; or add a row to data/hardware.yaml.")


def this_cpu(row: Hardware | None = None) -> Hardware:
    """This machine as a CPU server host: the memory available now (a CPU row's price, when one is given)."""
    import os

    import psutil

    row = row or hardware_table().get("CPU-2vCPU") or Hardware("CPU", "CPU")
    cores = os.cpu_count() or 1
    return Hardware(name=row.name, description=f"this machine's CPU ({cores} cores)", usd_per_hour=row.usd_per_hour,
                    example=row.example, memory_gib=round(psutil.virtual_memory().available / GIB, 1),
                    note="memory: what this machine has available now")


def detect_hardware() -> Hardware:
    """The machine evalkit runs on: a table row matched by nvidia-smi's name and GPU count, else its figures."""
    from evalkit.envreport import query_gpus

    gpus = query_gpus()
    if not gpus:
        return this_cpu()
    return match_gpus(gpus)


def match_gpus(gpus: list[dict]) -> Hardware:
    """The table row for what nvidia-smi reported (``[{name, memory_mib, free_mib}]``), or one made from it."""
    name, count = gpus[0]["name"], len(gpus)
    memory = gpus[0]["memory_mib"] / 1024
    for row in hardware_table().values():
        if row.gpu and row.nvidia_smi.lower() == name.lower() and row.gpus == count:
            return row
    for row in hardware_table().values():  # the GPU is known, the count is not: the one-GPU row scaled
        if row.gpu and row.nvidia_smi.lower() == name.lower() and row.gpus == 1:
            return Hardware(name=f"{count}x{row.name}", description=f"{count} x {row.description}", gpus=count,
                            gpu_memory_gib=row.gpu_memory_gib, bandwidth_gbs=row.bandwidth_gbs,
                            usd_per_hour=row.usd_per_hour * count if row.usd_per_hour else None,
                            nvidia_smi=row.nvidia_smi, source=row.source,
                            note=f"{count} GPUs of the table's {row.name} row")
    return Hardware(name=name, description=f"{count} x {name}" if count > 1 else name, gpus=count,
                    gpu_memory_gib=round(memory, 1),
                    note=f"{name} is not in data/hardware.yaml: planned with the {memory:.1f} GiB nvidia-smi reports "
                         "(no bandwidth or price, so no decode ceiling or cost)")
