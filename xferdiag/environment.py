"""Where a run happened: versions, platform and compute settings, recorded in run.json."""

from __future__ import annotations

import os
import platform
import sys

import torch


def choose_device(requested: str = "auto") -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


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
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    env.update(settings)
    return env
