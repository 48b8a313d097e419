"""How long rendering the report of a fully computed, realistically sized run takes, and how big it is.

The run directory is synthetic (xferdiag/testing.py) but has the sizes of a real small study:
3 seeds x 2 arms, 20 epochs, 300 test examples, 10 classes, 8 explained examples x 3 methods x 2
arms at 32x32. One untimed render first pays the one-off costs (imports, matplotlib's font cache),
then the median of several renders is reported. Run with ``python -m benchmarks.bench_report``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from xferdiag.report import render_report
from xferdiag.testing import write_full_run

TARGET_S = 5.0
TARGET_MB = 5.0


def main(quick: bool = False) -> list[dict]:
    repeats = 1 if quick else 5
    with tempfile.TemporaryDirectory() as tmp:
        run = write_full_run(Path(tmp) / "run", classes=[f"class {i}" for i in range(10)], seeds=(0, 1, 2),
                             n_test=300, epochs=20, n_explained=8, size=32, channels=3)
        render_report(run)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            report = render_report(run)
            times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    size_mb = len(report.html.encode("utf-8")) / 1e6
    return [{
        "name": "render_report: 3 seeds x 2 arms, 20 epochs, 300 test, 10 classes, 8x3x2 maps at 32x32",
        "xferdiag_s": round(seconds, 3),
        "target": f"<= {TARGET_S:g} s and <= {TARGET_MB:g} MB",
        "met": seconds <= TARGET_S and size_mb <= TARGET_MB,
        "size_mb": round(size_mb, 3),
    }]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one timed render instead of the median of five")
    for row in main(quick=parser.parse_args().quick):
        print(json.dumps(row))
