"""Shared fixtures: a source checkpoint pretrained here (no downloads) and small image folders."""

from __future__ import annotations

from xferdiag.cli import calm_waiting_threads

calm_waiting_threads()  # as the command does, before torch and numpy load: waiting threads sleep on a busy CI box

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402


@pytest.fixture(scope="module")
def one_thread():
    """Tiny arrays: threads cost more than they save, and thrash on a busy 2-core box."""
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def digits_checkpoint(tmp_path_factory):
    """The built-in CNN pretrained for two epochs on the upright digits: a real, local checkpoint."""
    from xferdiag.commands.demo import pretrain_source

    torch.set_num_threads(1)
    return pretrain_source("digits:upright", tmp_path_factory.mktemp("source"), epochs=2, quiet=True)


def make_image_folder(root, classes=("circle", "square"), per_class=12, size=20, mode="L", seed=0):
    """A folder of class folders with simple, learnable synthetic images."""
    rng = np.random.default_rng(seed)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = rng.uniform(0, 60, (size, size))
            lo, hi = size // 4, 3 * size // 4
            if c % 2 == 0:
                yy, xx = np.mgrid[:size, :size]
                img[(yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 4) ** 2] = 230
            else:
                img[lo:hi, lo:hi] = 230
            arr = img.astype(np.uint8)
            Image.fromarray(arr, mode="L").convert(mode).save(root / name / f"{i}.png")
    return root


@pytest.fixture
def image_folder(tmp_path):
    return make_image_folder(tmp_path / "images")
