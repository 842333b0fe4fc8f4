"""pyproject.toml and environment.yml pin the same versions."""

import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _pins(requirements):
    pins = {}
    for req in requirements:
        if "==" in req:
            name, version = req.split("==")
            pins[name.split("[")[0].strip().lower()] = version.strip()
    return pins


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = _pins(project["dependencies"] + project["optional-dependencies"]["cpu"]
                   + project["optional-dependencies"]["test"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert _pins(pip_section) == wanted


def test_every_dependency_is_pinned():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    every = project["dependencies"] + sum(project["optional-dependencies"].values(), [])
    assert [r for r in every if "==" not in r] == []


@pytest.mark.parametrize("version", ["3.10.12", "3.15.0", "3.9.18"])
def test_set_up_refuses_a_python_the_pins_cannot_install_before_pip_runs(tmp_path, version):
    """A stand-in interpreter that reports ``version``: set-up stops at once with the version and the fix."""
    import subprocess
    import time

    fake = tmp_path / "python3"
    fake.write_text(f"#!/bin/sh\necho {version}\n")
    fake.chmod(0o755)
    started = time.monotonic()
    out = subprocess.run(["bash", str(ROOT / "scripts" / "setup.sh")], env={"PATH": "/usr/bin:/bin",
                         "PYTHON": str(fake)}, capture_output=True, text=True, timeout=30)
    assert out.returncode == 1 and time.monotonic() - started < 5
    assert f"is Python {version}" in out.stderr and "3.11 to 3.14" in out.stderr
    assert "make setup PYTHON=python3.11" in out.stderr and "pip" not in out.stdout
