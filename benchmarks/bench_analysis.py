"""``xferdiag analyze`` on a linear-probe run: each cut of issue 18 against the path it replaced,
timed back to back on the same run (the naive path still runs, through the same code or the library call).

* analyze, whole: the fine-tuned backbone shares the pretrained one's features when their tensors
  are equal, against running it again over the target sample (``_same_weights`` forced False);
  the results must be equal;
* the backbone over the target sample in channels-last layout against NCHW (features within 1e-4);
* ``analysis/features.npz`` written uncompressed against ``np.savez_compressed``;
* the shrinkage H-score's Ledoit-Wolf fit without the precision matrix it never reads.

The full run is the ``imagenet-fashion`` demo's configuration (EfficientNet-Lite0 at 64 px, 1 seed;
it needs the real assets, REAL_ASSETS.md); ``--quick`` a digits CNN. Run by hand:
``python -m benchmarks.bench_analysis [--quick]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from sklearn.covariance import LedoitWolf

from benchmarks.common import print_table, timed
from xferdiag import rundir
from xferdiag.commands import analyze
from xferdiag.commands.context import RunContext
from xferdiag.commands.demo import imagenet_config, pretrain_source
from xferdiag.commands.finetune import finetune
from xferdiag.config import RunConfig


def _run(work: Path, quick: bool) -> Path:
    if quick:
        checkpoint = pretrain_source("digits:upright", work, epochs=1, quiet=True)
        config = RunConfig(data="digits:rotated", model="builtin:digits-cnn", strategy="linear-probe", epochs=1, seeds=1,
                           pretrained_checkpoint=str(checkpoint), shots=[10])
    else:
        config = dataclasses.replace(imagenet_config(), seeds=1)
    return finetune(config, work / "run", quiet=True)


def _analyze(run: Path, dest: Path) -> tuple[dict, float]:
    shutil.copytree(run, dest)
    return timed(analyze.analyze_run, dest, quiet=True)


def _row(name: str, new_s: float, naive: str, naive_s: float, same: bool) -> dict:
    return {"name": name, "xferdiag_s": new_s, "peer": naive, "peer_s": naive_s, "ratio": naive_s / new_s,
            "target": "faster, same results", "met": bool(same and new_s < naive_s)}


def _layout_row(run: Path) -> dict:
    """Penultimate features of the target sample through the pretrained backbone, both layouts."""
    context = RunContext(run)
    backbone, spec = context.models.pretrained.backbone, context.input_spec
    rows = analyze._sample(len(context.target), 1000, 0)
    images = torch.stack([x for x, _ in context.target.dataset(rows, spec)])
    (nchw, nchw_s), (nhwc, nhwc_s) = (timed(_features, backbone, images, layout)
                                      for layout in (torch.contiguous_format, torch.channels_last))
    return _row(f"backbone over {len(rows)} target images, channels-last", nhwc_s, "NCHW", nchw_s,
                torch.allclose(nhwc, nchw, rtol=1e-4, atol=1e-5))


@torch.inference_mode()
def _features(backbone: torch.nn.Module, images: torch.Tensor, layout: torch.memory_format) -> torch.Tensor:
    return torch.cat([backbone(batch.contiguous(memory_format=layout)) for batch in images.split(256)])


def main(quick: bool = False) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run = _run(work, quick)
        shared, shared_s = _analyze(run, work / "shared")
        real = analyze._same_weights
        analyze._same_weights = lambda a, b: False
        try:
            unshared, unshared_s = _analyze(run, work / "unshared")
        finally:
            analyze._same_weights = real
        same = shared["similarity"] == unshared["similarity"] and \
            shared["transferability"]["scores"] == unshared["transferability"]["scores"]
        rows = [_row("analyze, linear probe (backbone once over the target sample)", shared_s,
                     "fine-tuned backbone run again", unshared_s, same), _layout_row(run)]
        cache = rundir.read_npz(rundir.RunDir(work / "shared").features_npz)
        _, plain_s = timed(rundir.write_npz, work / "plain.npz", compress=False, **cache)
        _, zlib_s = timed(np.savez_compressed, io.BytesIO(), **cache)
        rows.append(_row(f"features.npz ({sum(a.nbytes for a in cache.values()) / 1e6:.0f} MB) uncompressed", plain_s,
                         "np.savez_compressed", zlib_s, True))
        train = cache["pretrained__train__penultimate"].astype(np.float64)
        lean, lean_s = timed(LedoitWolf(store_precision=False).fit, train)
        full, full_s = timed(LedoitWolf().fit, train)
        rows.append(_row(f"Ledoit-Wolf fit for the shrinkage H-score, {train.shape[0]} x {train.shape[1]}", lean_s,
                         "sklearn default (also inverts it)", full_s, np.array_equal(lean.covariance_, full.covariance_)))
    print_table(rows, ["name", "xferdiag_s", "peer", "peer_s", "ratio", "met"])
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a digits CNN instead of the ImageNet demo's EfficientNet")
    main(quick=parser.parse_args().quick)
