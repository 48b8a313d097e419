"""The demo end to end, as a new user first meets xferdiag: ``python -m xferdiag demo`` in a fresh
process (pretraining, three seeds of both arms, analysis, explanations, report), its wall time and
peak memory. Target: at most 120 s on 2 CPU cores. Skipped with --quick: one demo takes about
two minutes, a fifth of the quick suite's budget, and tests/test_demo.py already runs it.

    python -m benchmarks.bench_demo
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import print_table

TARGET_S = 120.0
ROW = {"name": "demo end to end (python -m xferdiag demo)", "target": f"<= {TARGET_S:g} s on 2 cores"}


def run_demo(out: Path) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB, output) of one demo run into ``out``; raises if it fails.

    ``os.wait4`` gives the resource usage of this child alone; getrusage(RUSAGE_CHILDREN) would
    report the largest of every child this process ever had (other benchmarks spawn some).
    """
    with tempfile.TemporaryFile("w+") as log:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "xferdiag", "demo", "--out", str(out), "--quiet"],
                                stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        output = log.read()
    if proc.returncode != 0 or not (out / "report.html").is_file():
        raise RuntimeError(f"demo exited {proc.returncode}: {output.strip()[-500:]}")
    return seconds, usage.ru_maxrss / 1024, output  # ru_maxrss is in KiB on Linux


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
