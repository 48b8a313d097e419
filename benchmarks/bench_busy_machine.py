"""The demo on a shared machine: its wall time idle and with one other process keeping a core busy,
with OpenMP's waiting threads spinning (``OMP_WAIT_POLICY=ACTIVE``, what torch does unless told) and
sleeping (``PASSIVE``, what the xferdiag command sets). Target: busy at most 2x idle (issue #18).
Every demo runs in a fresh interpreter, because OpenMP reads the policy when torch loads it. Skipped
with --quick: it runs the demo three times (about 4 minutes on 2 cores).

    python -m benchmarks.bench_busy_machine
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from benchmarks.bench_demo import run_demo
from benchmarks.common import print_table

TARGET_RATIO = 2.0
ROW = {"name": "demo with one busy core: wall time / idle wall time", "target": f"<= {TARGET_RATIO:g}x"}


def _spin() -> None:
    while True:
        pass


@contextlib.contextmanager
def busy_neighbour() -> Iterator[None]:
    """Another process that keeps one core busy, as a second user's job would."""
    neighbour = multiprocessing.get_context("spawn").Process(target=_spin, daemon=True)
    neighbour.start()
    try:
        yield
    finally:
        neighbour.terminate()
        neighbour.join()


@contextlib.contextmanager
def wait_policy(policy: str) -> Iterator[None]:
    """``OMP_WAIT_POLICY`` for the fresh interpreters started inside the block."""
    before = os.environ.get("OMP_WAIT_POLICY")
    os.environ["OMP_WAIT_POLICY"] = policy
    try:
        yield
    finally:
        if before is None:
            del os.environ["OMP_WAIT_POLICY"]
        else:
            os.environ["OMP_WAIT_POLICY"] = before


def _demo_seconds(folder: Path, name: str, policy: str, busy: bool) -> tuple[float, str]:
    with wait_policy(policy), busy_neighbour() if busy else contextlib.nullcontext():
        seconds, _, output = run_demo(folder / name)
    verdict = next((line for line in output.splitlines() if line.startswith("verdict:")), "no verdict line")
    return seconds, verdict


def main(quick: bool = False) -> list[dict]:
    if quick:
        print("busy-machine demo skipped with --quick")
        return [{**ROW, "met": None, "notes": "skipped with --quick; run without it on an otherwise idle machine"}]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        idle, verdict = _demo_seconds(folder, "idle", "PASSIVE", busy=False)
        spinning, spinning_verdict = _demo_seconds(folder, "busy-active", "ACTIVE", busy=True)
        sleeping, sleeping_verdict = _demo_seconds(folder, "busy-passive", "PASSIVE", busy=True)
    same = verdict == spinning_verdict == sleeping_verdict
    row = {
        **ROW,
        "idle_s": idle,
        "busy_spinning_s": spinning,
        "busy_sleeping_s": sleeping,
        "ratio_spinning": spinning / idle,
        "ratio_sleeping": sleeping / idle,
        "met": sleeping / idle <= TARGET_RATIO and same,
        "xferdiag_s": sleeping,
        "notes": (f"idle {idle:.0f} s; one core busy: threads spinning {spinning:.0f} s ({spinning / idle:.2f}x), "
                  f"sleeping {sleeping:.0f} s ({sleeping / idle:.2f}x); "
                  + (verdict if same else f"verdicts differ: {verdict} / {spinning_verdict} / {sleeping_verdict}")),
    }
    print_table([row], ["name", "idle_s", "busy_spinning_s", "busy_sleeping_s", "ratio_spinning", "ratio_sleeping", "met"])
    print(row["notes"])
    return [row]


if __name__ == "__main__":
    main()
