"""Helpers shared by benchmark modules: timing, peak memory in a fresh process, a printed table.

Standard library only, so that importing a benchmark never needs the ``bench`` extra.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any


def timed(fn: Callable, *args, **kwargs) -> tuple[Any, float]:
    """(fn's result, wall seconds)."""
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(field + ":"))


@contextlib.contextmanager
def peak_rss_growth() -> Iterator[dict]:
    """Measure how far resident memory rises above its level at entry, into ``box["peak_mb"]``.

    Linux keeps an exact high-water mark; writing 5 to /proc/self/clear_refs resets it, so no
    sampling thread can miss a short spike. Freed heap memory is first handed back to the OS
    (malloc_trim), otherwise later allocations would reuse it unseen. ``peak_mb`` stays None
    where the kernel does not allow the reset.
    """
    box: dict = {"peak_mb": None}
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    try:
        before = status_kib("VmRSS")
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        before = None
    yield box
    if before is not None:
        box["peak_mb"] = (status_kib("VmHWM") - before) / 1024


def in_fresh_process(fn: Callable, *args) -> Any:
    """fn(*args) in a new interpreter: memory measured there is not hidden by what this one holds.

    An executor, not a Pool: a child that dies raises BrokenProcessPool here instead of being
    replaced and waited for forever.
    """
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def print_table(rows: list[dict], columns: list[str]) -> None:
    """Rows as an aligned plain-text table of the given keys."""
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    for line in [columns, *cells]:
        print("  ".join(text.ljust(w) for text, w in zip(line, widths)).rstrip())
