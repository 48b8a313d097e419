"""Where a run happened: versions, platform and compute settings, recorded in run.json."""

from __future__ import annotations

import os
import platform
import sys

import torch

from .errors import ConfigError


def choose_device(requested: str = "auto") -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"device {requested!r}: unknown; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {requested!r}: no CUDA GPU is available here; use --device cpu (or auto)")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"device {requested!r}: this machine has {torch.cuda.device_count()} GPU(s) (cuda:0..)")
    return device


def set_threads(threads: int | None) -> int:
    """Use the cores we have (``os.sched_getaffinity`` respects container limits), or what was asked."""
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    n = threads or available
    torch.set_num_threads(n)
    return n


def describe(device: torch.device, threads: int, **settings) -> dict:
    import torchvision

    env = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "platform": platform.platform(),
        "device": str(device),
        "threads": threads,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),  # as set when the run started (docs/scaling.md)
        "openblas_thread_timeout": os.environ.get("OPENBLAS_THREAD_TIMEOUT"),
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    env.update(settings)
    return env
