"""What the command line adds around a command: compute settings (docs/scaling.md), the recorded command, flags in errors."""

import os
import subprocess
import sys

from xferdiag.cli import _command_line, as_flag, build_parser, calm_waiting_threads


def test_waiting_threads_sleep_unless_the_user_chose(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT", raising=False)
    calm_waiting_threads()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE" and os.environ["OPENBLAS_THREAD_TIMEOUT"] == "4"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", "28")
    calm_waiting_threads()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE" and os.environ["OPENBLAS_THREAD_TIMEOUT"] == "28"


def test_the_command_line_module_does_not_load_torch_before_main_runs():
    """OpenMP and OpenBLAS read their settings when torch and numpy load them, so importing the CLI must load neither."""
    code = "import sys, xferdiag, xferdiag.cli; print('torch' in sys.modules, 'numpy' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False False"


def test_the_recorded_command_is_what_a_user_types_again(monkeypatch):
    """run.json's "command" (the report's "Command to reproduce") names the program, not the file that started it."""
    for started_as in ("/venv/bin/xferdiag", "/site-packages/xferdiag/__main__.py"):
        monkeypatch.setattr("sys.argv", [started_as, "demo", "--out", "runs/demo"])
        assert _command_line() == ["xferdiag", "demo", "--out", "runs/demo"]


def test_a_library_error_names_the_flag_the_user_typed():
    args = build_parser().parse_args(["explain", "runs/a", "--lime-samples", "1"])
    message = "lime_samples: must be an integer >= 2, got 1"
    assert as_flag(message, args) == "--lime-samples: must be an integer >= 2, got 1"
    assert as_flag("runs/a: not a run directory (no run.json)", args) == "runs/a: not a run directory (no run.json)"
    assert as_flag("seed: must be an integer >= 0, got -1", args) == "--seed: must be an integer >= 0, got -1"
    assert as_flag("alpha: must be a number", args) == "alpha: must be a number"  # not an option of explain
