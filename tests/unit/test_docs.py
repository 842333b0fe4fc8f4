"""workshop.md's troubleshooting table lists every error evalkit raises (regenerate: scripts/list_errors.py)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_workshop_error_table_is_current():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "list_errors.py"), "--check"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
