"""``xferdiag report`` on a computed demo run as a user waits for it: a whole process in a fresh
interpreter (start, imports, render, exit), with and without ``--no-compute``, against the same
command on the code before issue 26 (whose report imported torch, torchvision and the explainers).

bench_report.py times a warm render inside one process; this one times what re-opening a report
costs. Target: at most 3 s on 2 idle cores, and no torch imported (checked with ``-X importtime``,
untimed). The run is the demo's (made first, untimed, unless ``--run`` names a computed one; with
--quick a synthetic computed run of the demo's size from xferdiag/testing.py). The baseline is the
commit before the change, extracted with ``git archive`` (or ``--baseline DIR``, a checkout).

    python -m benchmarks.bench_report_process [--quick] [--run RUN_DIR] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

from benchmarks.common import print_table

ROOT = Path(__file__).resolve().parents[1]
BASELINE_COMMIT = "03194ba"
"""The last commit whose ``report`` imported the computing commands (and torch) at module level."""
TARGET_S = 3.0
MODEL_LIBRARIES = ("torch", "torchvision", "captum", "shap", "lime", "transformers", "timm")


def _env(code: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(code)}


def _xferdiag(code: Path, *args, python_flags: tuple[str, ...] = (), where: Path) -> subprocess.CompletedProcess:
    """``python -m xferdiag ARGS`` with ``code`` first on the path, started in ``where``: ``-m`` puts the
    working directory before PYTHONPATH, so it must not hold another xferdiag (this checkout's root does)."""
    return subprocess.run([sys.executable, *python_flags, "-m", "xferdiag", *map(str, args)], capture_output=True, text=True,
                          cwd=where, env=_env(code), timeout=900)


def report_seconds(code: Path, run: Path, flags: list[str], out: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of ``python -m xferdiag report RUN FLAGS`` with ``code`` first on the path.

    The CPU seconds (user + system, of the child) are what the wall time would be on an idle core
    for this mostly single-threaded work; on a shared machine they vary less than the wall time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = _xferdiag(code, "report", run, *flags, "--out", out, where=out.parent)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0 or "not in this report" in result.stdout:
        raise RuntimeError(f"report on {run} ({code}) exited {result.returncode}: {(result.stdout + result.stderr)[-500:]}")
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def model_libraries_imported(code: Path, run: Path, flags: list[str], out: Path) -> list[str]:
    """The libraries of :data:`MODEL_LIBRARIES` the command imports, read from ``-X importtime``."""
    result = _xferdiag(code, "report", run, *flags, "--out", out, python_flags=("-X", "importtime"), where=out.parent)
    if result.returncode != 0:
        raise RuntimeError(f"report on {run} ({code}) exited {result.returncode}: {result.stderr[-500:]}")
    loaded = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    return [name for name in MODEL_LIBRARIES if name in loaded]


def baseline_checkout(into: Path) -> Path | None:
    """The package as it was at :data:`BASELINE_COMMIT`, or None where git or that commit is not there."""
    try:
        archive = subprocess.run(["git", "archive", BASELINE_COMMIT, "xferdiag"], cwd=ROOT, capture_output=True, timeout=60)
    except OSError:
        return None
    if archive.returncode != 0:
        return None
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into


def computed_run(where: Path, quick: bool) -> Path:
    """The demo's run directory, computed (verdict, analysis, explanations); synthetic with ``quick``."""
    run = where / "demo"
    if quick:
        from xferdiag.testing import write_full_run

        return write_full_run(run, classes=[str(d) for d in range(10)], n_test=360, epochs=10, n_explained=8)
    result = _xferdiag(ROOT, "demo", "--out", run, "--quiet", where=where)
    if result.returncode != 0:
        raise RuntimeError(f"demo exited {result.returncode}: {result.stderr[-500:]}")
    return run


def _median(runs: list[tuple[float, float]]) -> tuple[float, float]:
    """Median wall and median CPU seconds of several runs."""
    return round(statistics.median(w for w, _ in runs), 3), round(statistics.median(c for _, c in runs), 3)


def _rows(run: Path, baseline: Path | None, repeats: int, scratch: Path, what: str) -> list[dict]:
    rows = []
    for flags in ([], ["--no-compute"]):
        codes = {"after": ROOT, **({"before": baseline} if baseline else {})}
        imported = {name: model_libraries_imported(code, run, flags, scratch / f"{name}.html") for name, code in codes.items()}
        times = {name: [] for name in codes}
        for _ in range(repeats):  # interleaved, so a change in the machine's load hits both alike
            for name, code in codes.items():
                times[name].append(report_seconds(code, run, flags, scratch / f"{name}.html"))
        after, before = (_median(times[name]) if name in times else (None, None) for name in ("after", "before"))
        rows.append({
            "name": f"xferdiag report {what} {' '.join(flags)}".rstrip() + ": whole process, fresh interpreter",
            "xferdiag_s": after[0],
            "peer": f"same command before issue 26 ({BASELINE_COMMIT})" if baseline else None,
            "peer_s": before[0],
            "ratio": round(before[0] / after[0], 2) if baseline else None,
            "target": f"<= {TARGET_S:g} s on 2 idle cores, no torch imported",
            "met": after[0] <= TARGET_S and not imported["after"],
            "cpu_s": after[1],
            "peer_cpu_s": before[1],
            "imported": ", ".join(imported["after"]) or "none of " + "/".join(MODEL_LIBRARIES),
            "imported_before": ", ".join(imported["before"]) if baseline else None,
            "runs_s": [round(wall, 2) for wall, _ in times["after"]],
            "load_average": round(os.getloadavg()[0], 2),
        })
    return rows


def main(quick: bool = False, run: str | None = None, baseline: str | None = None) -> list[dict]:
    repeats = 1 if quick else 5
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        old = Path(baseline) if baseline else baseline_checkout(scratch / "baseline")
        demo = Path(run) if run else computed_run(scratch, quick)
        what = "RUN" if run else ("on a synthetic computed run" if quick else "on the computed demo run")
        rows = _rows(demo, old, repeats, scratch, what)
    print_table(rows, ["name", "xferdiag_s", "cpu_s", "peer_s", "peer_cpu_s", "ratio", "imported", "imported_before",
                       "load_average", "met"])
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a synthetic computed run and one timing instead of the median of five")
    parser.add_argument("--run", help="a computed run directory to time (default: make the demo's, about a minute)")
    parser.add_argument("--baseline", help=f"a checkout of the code to compare with (default: {BASELINE_COMMIT}, by git archive)")
    options = parser.parse_args()
    main(quick=options.quick, run=options.run, baseline=options.baseline)
