"""Compute settings the command line chooses before torch loads (docs/scaling.md)."""

import os
import subprocess
import sys

from xferdiag.cli import calm_waiting_threads


def test_waiting_threads_sleep_unless_the_user_chose(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    calm_waiting_threads()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    calm_waiting_threads()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def test_the_command_line_module_does_not_load_torch_before_main_runs():
    """OpenMP reads OMP_WAIT_POLICY when torch loads it, so importing the CLI must not load torch."""
    code = "import sys, xferdiag, xferdiag.cli; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
