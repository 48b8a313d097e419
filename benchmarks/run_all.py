"""Run every benchmark (benchmarks/bench_*.py) several times and publish the results.

    python -m benchmarks.run_all [--quick] [--repeat R] [--only logme,mmd] [--out reports/benchmarks.md]

Each module's ``main(quick)`` runs in this process ``--repeat`` times; every row gets the median
of its runs with min-max, so one noisy run cannot make or break a target. A benchmark that fails
is a failed row, and one whose peer library is missing says so: the table never silently loses a
line. Writes the markdown table with a description of the machine, and a JSON copy beside it
(same name, .json) with every run's raw rows.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from xferdiag.rundir import write_json, write_text

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE.parent / "reports" / "benchmarks.md"
# import name -> distribution, for the libraries that only the ``bench`` extra installs
PEERS = {"pytorch_grad_cam": "grad-cam", "torchdrift": "torchdrift", "psutil": "psutil"}
SPREAD = ("xferdiag_s", "peer_s", "rate")  # shown as median (min-max)
SHOWN = {"name", "scenario", "xferdiag_s", "peer", "peer_s", "ratio", "rate", "target", "met", "notes"}
NOT_NOTED = {"series", "n", "met_runs", "runs", "failed"}  # in the JSON only, or said elsewhere in the row


def available() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))


def machine() -> dict:
    """What the timings depend on: CPU, cores, memory, library versions, threads, GPU, load."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
               platform.processor() or "unknown")
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    mem_kib = next((int(line.split()[1]) for line in meminfo.splitlines() if line.startswith("MemTotal:")), 0)
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True,
                                text=True, timeout=10).stdout.strip() or None
    except OSError:
        commit = None
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "memory_gib": round(mem_kib / 2**20, 1),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch_threads": torch.get_num_threads(),
        "thread_env": {k: v for k, v in os.environ.items() if k.endswith("_NUM_THREADS")},
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "commit": commit,
        "load_average_start": os.getloadavg()[0],
    }


def run_module(name: str, quick: bool) -> tuple[list[dict] | None, str | None, float]:
    """(rows, error, seconds) of one run; error is set when the module could not run."""
    threads = torch.get_num_threads()
    start = time.perf_counter()
    try:
        module = importlib.import_module(f"benchmarks.bench_{name}")
        return module.main(quick=quick), None, time.perf_counter() - start
    except Exception as exc:  # reported as a row, never hidden
        seconds = time.perf_counter() - start
        peer = PEERS.get((getattr(exc, "name", None) or "").split(".")[0])
        if isinstance(exc, ModuleNotFoundError) and peer:
            return None, f"peer not installed: {peer} (pip install -e '.[bench]')", seconds
        traceback.print_exc()
        return None, f"failed: {type(exc).__name__}: {exc}", seconds
    finally:
        torch.set_num_threads(threads)  # some benchmarks pin threads; the next starts as this one did


def _row_key(row: dict) -> tuple:
    return row.get("name"), row.get("scenario"), row.get("peer")


def merge(runs: list[list[dict]]) -> list[dict]:
    """One row per distinct row: numbers become the median of the runs; ``met_runs`` keeps each run's met."""
    grouped: dict[tuple, list[dict]] = {}
    for rows in runs:
        for row in rows:
            grouped.setdefault(_row_key(row), []).append(row)
    merged = []
    for versions in grouped.values():
        row = dict(versions[0])
        for key in list(row):
            values = [v.get(key) for v in versions]
            if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in values):
                row[key] = values[0] if len(set(values)) == 1 else statistics.median(values)
                if key in SPREAD:
                    row[f"{key}_range"] = [min(values), max(values)]
        row["met_runs"] = [v.get("met") for v in versions]
        row["runs"] = len(versions)
        merged.append(row)
    return merged


def _num(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _with_range(row: dict, key: str) -> str:
    if row.get(key) is None:
        return "-"
    lo, hi = row.get(f"{key}_range", [row[key], row[key]])
    return _num(row[key]) if lo == hi else f"{_num(row[key])} ({_num(lo)}–{_num(hi)})"


def _met(row: dict) -> str:
    runs = [m for m in row["met_runs"] if m is not None]
    if not runs:
        return "-"
    if all(runs):
        return "yes"
    misses = runs.count(False)
    return "**MISS**" if misses == len(runs) else f"**miss** in {misses} of {len(runs)} runs"


def _target(row: dict) -> str:
    target = row.get("target")
    if target is None:
        return "-"
    return f"<= {_num(target)}" if isinstance(target, (int, float)) else str(target)


def _notes(row: dict) -> str:
    extras = [f"{k}: {_num(v) if not isinstance(v, dict) else ', '.join(f'{a}={_num(b)}' for a, b in v.items())}"
              for k, v in row.items()
              if k not in SHOWN | NOT_NOTED and not k.endswith("_range") and v is not None]
    return "; ".join(filter(None, [row.get("notes"), *extras]))


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def section(result: dict) -> list[str]:
    """The markdown table of one benchmark module, with only the columns its rows use."""
    rows = result["rows"] + [{"name": f"bench_{result['module']}", "notes": error, "met_runs": [],
                              "failed": error.startswith("failed")} for error in result["errors"]]

    def has(key: str) -> bool:
        return any(r.get(key) is not None for r in rows)

    columns = [("benchmark", lambda r: r["name"])]
    if has("scenario"):
        columns.append(("scenario", lambda r: r.get("scenario", "-")))
    if has("xferdiag_s"):
        columns.append(("xferdiag s, median (min–max)", lambda r: _with_range(r, "xferdiag_s")))
    if has("rate"):
        columns.append(("rate, median (min–max)", lambda r: _with_range(r, "rate")))
    if has("peer"):
        columns += [("peer", lambda r: r.get("peer") or "-"), ("peer s", lambda r: _with_range(r, "peer_s")),
                    ("ratio (peer/xferdiag)", lambda r: "-" if r.get("ratio") is None else f"{_num(r['ratio'])}x")]
    columns += [("target", _target), ("met", lambda r: "**FAILED**" if r.get("failed") else _met(r)),
                ("notes", _notes)]
    lines = [f"## {result['module']}", "",
             f"{result['ok_runs']} of {result['repeat']} runs succeeded, {result['seconds']:.0f} s in all.", "",
             "| " + " | ".join(title for title, _ in columns) + " |",
             "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(fn(r)) for _, fn in columns) + " |" for r in rows]
    return lines + [""]


def markdown(report: dict) -> str:
    m = report["machine"]
    runs = "once" if report["repeat"] == 1 else f"{report['repeat']} times"
    lines = ["# xferdiag benchmarks", ""]
    if report["note"]:
        lines += [f"> **{report['note']}**", ""]
    lines += [
        f"Generated {m['date']} by `{shlex.join(['python', '-m', 'benchmarks.run_all', *report['argv']])}`",
        f"({'quick sizes' if report['quick'] else 'full sizes'}, each benchmark run {runs};"
        " times are medians with min–max; ratio is the median of the per-run ratios).", "",
        f"- CPU: {m['cpu']}, {m['usable_cores']} usable of {m['cores']} cores; memory {m['memory_gib']} GiB",
        f"- GPU: {m['gpu'] or 'none'}",
        f"- Python {m['python']}, torch {m['torch']} ({m['torch_threads']} threads), numpy {m['numpy']}; "
        f"{m['platform']}" + (f"; {', '.join(f'{k}={v}' for k, v in m['thread_env'].items())}" if m["thread_env"] else ""),
        f"- load average (1 min): {m['load_average_start']:.1f} at start, {m['load_average_end']:.1f} at end",
        f"- commit: {m['commit'] or 'unknown'} (the working tree may hold uncommitted changes)",
        f"- total: {report['seconds']:.0f} s", "",
    ]
    for result in report["benchmarks"]:
        lines += section(result)
    return "\n".join(lines)


def run(names: list[str], quick: bool, repeat: int) -> list[dict]:
    results = []
    for name in names:
        print(f"\n=== {name}: {repeat} run{'s' * (repeat > 1)}{' (quick)' if quick else ''} ===", flush=True)
        runs, errors, seconds = [], [], 0.0
        for _ in range(repeat):
            rows, error, elapsed = run_module(name, quick)
            seconds += elapsed
            if error:
                print(error, flush=True)
                errors.append(error)
                if error.startswith("peer not installed"):
                    break  # the same every time
            else:
                runs.append(rows)
        results.append({"module": name, "repeat": repeat, "ok_runs": len(runs), "seconds": seconds,
                        "errors": sorted(set(errors)), "runs": runs, "rows": merge(runs)})
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: the whole suite in under 10 minutes")
    parser.add_argument("--repeat", type=int, help="runs per benchmark (default 3, or 1 with --quick)")
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(available())}")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="markdown file (default reports/benchmarks.md)")
    parser.add_argument("--note", default="", help="a line shown at the top of the results")
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    names = available()
    if args.only:
        names = [n.strip().removeprefix("bench_") for n in args.only.split(",") if n.strip()]
        unknown = sorted(set(names) - set(available()))
        if unknown:
            parser.error(f"--only: unknown benchmark {', '.join(unknown)}; choose from {', '.join(available())}")
    repeat = args.repeat if args.repeat is not None else (1 if args.quick else 3)
    if repeat < 1:
        parser.error("--repeat must be at least 1")

    info, start = machine(), time.perf_counter()
    results = run(names, args.quick, repeat)
    info["load_average_end"] = os.getloadavg()[0]
    report = {"machine": info, "argv": argv, "quick": args.quick, "repeat": repeat, "note": args.note,
              "seconds": time.perf_counter() - start, "benchmarks": results}
    write_text(args.out, markdown(report))
    # numpy values become plain; anything else a row holds becomes its text rather than a crash at the end
    plain = json.loads(json.dumps(report, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))
    write_json(args.out.with_suffix(".json"), plain)
    failed = [r["module"] for r in results if any(e.startswith("failed") for e in r["errors"])]
    print(f"\nwrote {args.out} and {args.out.with_suffix('.json')} in {report['seconds']:.0f} s"
          + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
