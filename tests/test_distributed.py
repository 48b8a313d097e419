"""Data-parallel fine-tuning: torchrun with two CPU processes (Gloo) against one process, same global batch.

Tolerances, and why:
- The transfer arm is a linear probe: its backbone is frozen in eval mode, so BatchNorm uses its
  running statistics and the two runs do the same arithmetic except for the order of float sums
  (gradients averaged over two half-batches, features extracted in shards). Predictions must be
  identical and probabilities and losses agree to 1e-5.
- The scratch arm trains every layer, BatchNorm included, and DistributedDataParallel normalises
  each rank's half-batch (16 examples) with its own statistics where one process uses all 32 (as
  plain DDP does; SyncBatchNorm is GPU-only). That perturbs every step like a small change of
  batch, so the runs follow nearby trajectories, not the same one: final test accuracy within
  0.05 (11 of the 225 test examples; 4 differ here, 0.013 apart) and test loss within 5% (0.4% here).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import BatchSampler, RandomSampler

from xferdiag.commands.finetune import finetune
from xferdiag.config import RunConfig
from xferdiag.engine.distributed import RankBatches

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = dict(data="digits:rotated", model="builtin:digits-cnn", strategy="linear-probe", epochs=3, seeds=1,
                augment=False, batch_size=32, threads=1)


@pytest.mark.parametrize("n, batch, world", [(50, 8, 2), (50, 8, 3), (9, 4, 2), (33, 32, 2), (64, 32, 4)])
def test_rank_batches_share_out_the_single_process_batches(n, batch, world):
    single = [list(b) for b in BatchSampler(RandomSampler(range(n), generator=torch.Generator().manual_seed(7)), batch, False)]
    ranks = [RankBatches(n, batch, torch.Generator().manual_seed(7), for_rank=r, world=world) for r in range(world)]
    kept = [b for b in single if len(b) >= world]  # only a last batch smaller than the world is dropped
    assert len(kept) >= len(single) - 1
    assert all(len(r) == len(kept) for r in ranks)  # every rank takes the same number of steps
    for step, batch_indices in enumerate(kept):
        assert sum((r.batches[step] for r in ranks), []) == batch_indices
        assert sum(r.weights[step] for r in ranks) == pytest.approx(world)  # DDP's average is the global mean
    assert RankBatches(n, batch, torch.Generator().manual_seed(7), for_rank=0, world=1).batches == single


@pytest.mark.parametrize("world", [1, 2])
def test_batches_grouped_by_length_cover_every_text_once_with_little_padding(world):
    n, batch = 1000, 16
    lengths = torch.randint(4, 200, (n,), generator=torch.Generator().manual_seed(0))
    grouped = [RankBatches(n, batch, torch.Generator().manual_seed(3), for_rank=r, world=world, lengths=lengths)
               for r in range(world)]
    steps = [sum((r.batches[k] for r in grouped), []) for k in range(len(grouped[0]))]
    assert sorted(i for step in steps for i in step) == list(range(n))  # every text once per epoch
    assert sorted(map(len, steps)) == [n % batch] + [batch] * (n // batch)  # one short batch, anywhere in the epoch

    def padded(batches):  # tokens a batch costs once trailing padding is trimmed: its longest text, times its size
        return sum(len(b) * int(lengths[b].max()) for b in batches)

    plain = RankBatches(n, batch, torch.Generator().manual_seed(3), for_rank=0, world=1).batches
    assert padded(steps) < 0.6 * padded(plain)  # lengths 4..199 uniform: random batches pay about 1.8x the tokens
    another_epoch = RankBatches(n, batch, torch.Generator().manual_seed(4), for_rank=0, world=1, lengths=lengths).batches
    assert {tuple(b) for b in another_epoch} != {tuple(step) for step in steps}  # each epoch draws new batches


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_torchrun_two_processes_write_one_run_matching_a_single_process(tmp_path, digits_checkpoint):
    flags = ["--pretrained-checkpoint", str(digits_checkpoint), "--quiet", "--no-augment"]
    flags += [f"--{k.replace('_', '-')}={v}" for k, v in SETTINGS.items() if k != "augment"]
    ddp = tmp_path / "ddp"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
         "-m", "xferdiag", "finetune", *flags, "--out", str(ddp)],
        cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    single = finetune(RunConfig(**SETTINGS, pretrained_checkpoint=str(digits_checkpoint)), tmp_path / "single", quiet=True)

    # One complete run directory: exactly the files one process writes (no temporaries, lock or checkpoint).
    assert _files(ddp) == _files(single)
    assert "verdict.json" in _files(ddp) and not any(".tmp" in f or "checkpoint" in f for f in _files(ddp))
    env = json.loads((ddp / "run.json").read_text())["environment"]
    assert (env["world_size"], env["dist_backend"], env["per_rank_batch"]) == (2, "gloo", 16)
    assert json.loads((ddp / "data.json").read_text()) == json.loads((single / "data.json").read_text())

    for arm in ("transfer", "scratch"):
        a, b = (np.load(d / f"arms/{arm}/seed-0/predictions.npz") for d in (single, ddp))
        assert {k: (a[k].dtype, a[k].shape) for k in a.files} == {k: (b[k].dtype, b[k].shape) for k in b.files}
        np.testing.assert_array_equal(a["labels"], b["labels"])  # gathered back in test-split order
        ma, mb = (json.loads((d / f"arms/{arm}/seed-0/metrics.json").read_text()) for d in (single, ddp))
        assert ma["epochs_run"] == mb["epochs_run"] == SETTINGS["epochs"]
        if arm == "transfer":
            np.testing.assert_array_equal(a["predictions"], b["predictions"])
            np.testing.assert_allclose(a["probabilities"], b["probabilities"], atol=1e-5)
            ha, hb = ((d / f"arms/{arm}/seed-0/history.csv").read_text().splitlines()[1:] for d in (single, ddp))
            for ra, rb in zip(ha, hb, strict=True):
                np.testing.assert_allclose([float(v) for v in ra.split(",")[2:5]], [float(v) for v in rb.split(",")[2:5]], rtol=1e-5)
        else:
            assert abs(ma["test"]["accuracy"] - mb["test"]["accuracy"]) <= 0.05
            assert mb["test"]["loss"] == pytest.approx(ma["test"]["loss"], rel=0.05)


DETECTION = dict(model="fasterrcnn", backbone="mobilenet_v2", strategy="freeze", epochs=1, seeds=1, batch_size=4, image_size=64,
                 test_fraction=0.35, threads=1)
"""A tiny detection run: 17 scenes of 64 px (6 test images, so the ranks' evaluation shards are uneven: 3 and 3 of
the test split, 1 and 2 of the validation split), one epoch, the backbone frozen in the transfer arm."""


@pytest.mark.slow
def test_torchrun_detection_gathers_every_rank_s_detections_as_one_process_evaluates_them(tmp_path):
    """Under torchrun each rank scores its slice of the test images and the task gathers the lists of dicts back:
    the run holds one process's files, and the stored weights scored by one process give exactly the stored
    detections and metrics. (The two runs' training differs: the proposal and box samplers draw from each rank's
    own random stream, so their weights are compared only through their evaluations, not to each other.)"""
    import torchvision

    from xferdiag.engine.runtime import Runtime
    from xferdiag.engine.trainer import evaluate_model
    from xferdiag.tasks.detection.data import make_scenes, write_coco
    from xferdiag.tasks.detection.task import DetectionTask

    write_coco(make_scenes(17, seed=5, size=64, max_objects=1, scale=(0.4, 0.6)), tmp_path / "scenes")
    torch.manual_seed(0)
    torch.save(torchvision.models.mobilenet_v2().state_dict(), tmp_path / "mnv2.pt")
    settings = dict(DETECTION, data=str(tmp_path / "scenes"), pretrained_checkpoint=str(tmp_path / "mnv2.pt"))
    ddp = tmp_path / "ddp"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone", "-m", "xferdiag", "finetune",
         *[f"--{k.replace('_', '-')}={v}" for k, v in settings.items()], "--quiet", "--out", str(ddp)],
        cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("run directory:") == 1  # rank 0 speaks for both
    config = RunConfig(**settings)
    single = finetune(config, tmp_path / "single", quiet=True)
    assert _files(ddp) == _files(single)
    env = json.loads((ddp / "run.json").read_text())["environment"]
    assert (env["world_size"], env["dist_backend"], env["per_rank_batch"]) == (2, "gloo", 2)
    for name in ("data.json", "test_annotations.json"):
        assert json.loads((ddp / name).read_text()) == json.loads((single / name).read_text())

    task = DetectionTask()
    point = task.prepare(config, quiet=True).points[-1]
    assert point.sizes["test"] == 6 and point.sizes["val"] == 3
    for arm in ("transfer", "scratch"):
        seed = ddp / f"arms/{arm}/seed-0"
        model = point.new_model(arm == "transfer", 0)
        model.load_state_dict(torch.load(seed / "model.pt", weights_only=True))
        scored = evaluate_model(model, point.data, Runtime(progress=False), task, DETECTION["batch_size"])
        stored = json.loads((seed / "detections.json").read_text())
        assert len(stored) == len(scored["test"].results) > 0
        for mine, theirs in zip(scored["test"].results, stored, strict=True):
            assert (mine["image_id"], mine["category_id"]) == (theirs["image_id"], theirs["category_id"])
            np.testing.assert_allclose([*mine["bbox"], mine["score"]], [*theirs["bbox"], theirs["score"]], rtol=1e-5, atol=1e-4)
        assert {r["image_id"] for r in stored} <= {im["id"] for im in json.loads((ddp / "test_annotations.json").read_text())["images"]}
        metrics = json.loads((seed / "metrics.json").read_text())
        for split in ("test", "val"):
            for key, value in scored[split].summary().items():
                if key != "per_class_ap":
                    assert metrics[split][key] == pytest.approx(value, abs=1e-6), (arm, split, key)
