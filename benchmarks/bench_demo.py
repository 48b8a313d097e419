"""The demo end to end, as a new user first meets xferdiag: ``python -m xferdiag demo`` in a fresh
process (pretraining, three seeds of both arms, analysis, explanations, report), its wall time and
peak memory. Target: at most 120 s on 2 CPU cores. Skipped with --quick: one demo takes about
two minutes, a fifth of the quick suite's budget, and tests/test_demo.py already runs it.

    python -m benchmarks.bench_demo
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from benchmarks.common import in_fresh_process, print_table, status_kib

TARGET_S = 120.0
ROW = {"name": "demo end to end (python -m xferdiag demo)", "target": f"<= {TARGET_S:g} s on 2 cores"}


def _demo_in_child(out: str) -> tuple[int, float, float, str]:
    """Runs in a fresh interpreter: (exit code, wall seconds, peak RSS in MB, output) of the demo.

    The peak is the kernel's high-water mark of this interpreter's own memory (VmHWM). The rusage
    a parent gets from wait4 is no good here: Linux carries the parent's high-water mark across
    fork and exec, so a child of a benchmark runner that already holds gigabytes would report them.
    """
    import contextlib
    import io

    log = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        from xferdiag.cli import main as xferdiag_main  # importing torch and friends is part of a user's wait

        code = xferdiag_main(["demo", "--out", out, "--quiet"])
    seconds = time.perf_counter() - start
    return code, seconds, status_kib("VmHWM") / 1024, log.getvalue()


def run_demo(out: Path) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB, output) of one demo run into ``out`` in a fresh interpreter,
    imports included; raises if it fails."""
    code, seconds, peak_mb, output = in_fresh_process(_demo_in_child, str(out))
    if code != 0 or not (out / "report.html").is_file():
        raise RuntimeError(f"demo exited {code}: {output.strip()[-500:]}")
    return seconds, peak_mb, output


def main(quick: bool = False) -> list[dict]:
    if quick:
        print("demo skipped with --quick")
        return [{**ROW, "met": None, "notes": "skipped with --quick; run without it"}]
    with tempfile.TemporaryDirectory() as tmp:
        seconds, peak_mb, output = run_demo(Path(tmp) / "demo")
    cores = len(os.sched_getaffinity(0))
    verdict = next((line for line in output.splitlines() if line.startswith("verdict:")), "no verdict line")
    row = {
        **ROW,
        "xferdiag_s": seconds,
        "met": seconds <= TARGET_S,
        "peak_rss_mb": peak_mb,
        "cores": cores,
        "notes": verdict,
    }
    print_table([row], ["name", "xferdiag_s", "peak_rss_mb", "cores", "target", "met"])
    print(row["notes"])
    return [row]


if __name__ == "__main__":
    main()
