"""Synthetic run directories for tests and benchmarks, written with the product's own writers.

Seeds are written by :func:`~xferdiag.rundir.write_finished_seed` (so history.csv has the
trainer's columns) and ``verdict.json`` is the real verdict of those seeds, so a fixture cannot
drift from what ``xferdiag finetune`` writes. The numbers are made up but consistent (predictions
match the accuracies), so a rendered report reads like a real one and the plots have something to
show. Every path comes from :class:`~xferdiag.rundir.RunDir`; no file name is spelled here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .commands.verdict import verdict_for_run
from .modalities.kinds import IMAGE
from .rundir import Predictions, RunDir, write_finished_seed, write_json, write_npz

METHODS = ("gradcam", "shap", "lime")
"""The explanation methods a synthetic run has maps for."""


def write_run_json(rd: RunDir, *, schema: int = 1, strategy: str = "linear-probe", model: str = "resnet18") -> None:
    write_json(rd.run_json, {
        "schema": schema,
        "xferdiag_version": "0.1.0",
        "created": "2025-01-01T12:00:00Z",
        "command": ["xferdiag", "finetune", "--data", "digits", "--model", model,
                    "--strategy", strategy, "--out", str(rd.root)],
        "config": {"data": "digits:rotated", "model": model, "strategy": strategy, "epochs": 20,
                   "batch_size": 64, "optimizer": "adamw", "lr": 0.001, "seeds": 3, "baseline": "scratch",
                   "shots": ["all"], "augment": True, "device": "cpu"},
        "environment": {"python": "3.11.9", "torch": "2.4.0", "torchvision": "0.19.0",
                        "platform": "Linux-6.1-x86_64", "device": "cpu", "threads": 2},
    })


def write_data_json(rd: RunDir, classes: list[str], *, n_test: int, shots: int | None = None,
                    size: int = 16, channels: int = 1) -> None:
    write_json(rd.data_json, {
        "classes": classes, "kind": IMAGE, "split_seed": 0,
        "splits": {"source": {"train": 900, "val": 100},
                   "target": {"train": 5 * len(classes) if shots else 400, "val": 100, "test": n_test}},
        "shots": shots, "input": {"channels": channels, "size": size},
    })


def _curve(final: float, epochs: int, rng: np.random.Generator) -> np.ndarray:
    """A saturating learning curve ending near ``final``, with a little noise."""
    t = np.arange(1, epochs + 1)
    return np.clip(final * (1 - np.exp(-t / (epochs / 4))) + rng.normal(0, 0.01, epochs), 0, 1)


def _predictions(accuracy: float, n_classes: int, n_test: int, rng: np.random.Generator) -> Predictions:
    """Test predictions with about ``accuracy`` of them right and confident softmax outputs."""
    labels = np.arange(n_test, dtype=np.int64) % n_classes
    predictions = labels.copy()
    wrong = rng.choice(n_test, size=int(round((1 - accuracy) * n_test)), replace=False)
    predictions[wrong] = (labels[wrong] + rng.integers(1, n_classes, wrong.size)) % n_classes
    logits = rng.normal(0, 1, (n_test, n_classes))
    logits[np.arange(n_test), predictions] += 3
    probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return Predictions(labels, predictions, probabilities.astype(np.float32))


def write_arm_seed(rd: RunDir, arm: str, seed: int, accuracy: float, n_classes: int, *, n_test: int,
                   epochs: int, rng: np.random.Generator, phase: str = "linear-probe") -> float:
    """One finished seed of one arm (model, history, predictions, metrics); returns the test accuracy written.

    ``phase`` is history.csv's phase column (the trainer writes the arm's strategy there).
    """
    val_acc = _curve(accuracy, epochs, rng)
    val_loss = 2.3 * np.exp(-np.arange(epochs) / (epochs / 3)) + (1 - accuracy) + rng.normal(0, 0.02, epochs)
    history = [{"epoch": e + 1, "phase": phase, "train_loss": float(val_loss[e] * 0.9), "val_loss": float(val_loss[e]),
                "val_accuracy": float(val_acc[e]), "lr": 1e-3, "seconds": 0.5} for e in range(epochs)]
    predictions = _predictions(accuracy, n_classes, n_test, rng)
    measured = float((predictions.predictions == predictions.labels).mean())
    metrics = {
        "test": {"accuracy": measured, "macro_f1": measured - 0.01, "loss": float(val_loss[-1])},
        "val": {"accuracy": float(val_acc[-1]), "macro_f1": float(val_acc[-1]) - 0.01, "loss": float(val_loss[-1])},
        "epochs_run": epochs, "train_seconds": 0.5 * epochs, "best_epoch": int(np.argmax(val_acc)) + 1,
    }
    state = {"fc.weight": torch.zeros(n_classes, 8), "fc.bias": torch.zeros(n_classes)}
    records = {"predictions": {"labels": predictions.labels, "predictions": predictions.predictions,
                               "probabilities": predictions.probabilities}}
    write_finished_seed(rd.seed(arm, seed), state_dict=state, records=records, metrics=metrics, history=history)
    return measured


def write_verdict(rd: RunDir) -> dict:
    """The real transfer-vs-scratch verdict of the seeds written, saved as the run's verdict."""
    verdict = verdict_for_run(rd.root)
    write_json(rd.verdict_json, verdict)
    return verdict


def write_shots(rd: RunDir, gaps: tuple[float, ...] = (0.30, 0.18, 0.09, 0.04)) -> None:
    points = []
    for i, (shots, gap) in enumerate(zip((5, 10, 20, "all"), gaps)):
        n_train = 400 if shots == "all" else shots * 10
        scratch = 0.45 + 0.12 * i
        points.append({"shots": shots, "n_train": n_train, "transfer_mean": scratch + gap,
                       "scratch_mean": scratch, "gap": gap, "ci95": [gap - 0.05, gap + 0.05],
                       "verdict": "positive" if gap - 0.05 > 0 else "inconclusive"})
    write_json(rd.shots_json, {"metric": "accuracy", "points": points})


def _write_shift(rd: RunDir, classes: list[str], n: int, rng: np.random.Generator, *, proxy_a: float,
                 mmd_p: float) -> None:
    src_p = np.full(len(classes), 1 / len(classes))
    tgt_p = rng.dirichlet(np.ones(len(classes)) * 5)
    write_json(rd.shift_json, {
        "layer": "penultimate", "model": "pretrained", "n_source": n, "n_target": n,
        "mmd": {"statistic": 0.21, "p_value": mmd_p, "bandwidth": 1.7, "n_permutations": 500},
        "proxy_a_distance": {"value": proxy_a, "ci95": [proxy_a - 0.1, proxy_a + 0.1]},
        "frechet": {"value": 5.3},
        "c2st": {"accuracy": 0.83, "p_value": 0.001, "n_test": 80},
        "ks": {"fraction_shifted": 0.75, "n_dimensions": 8, "alpha": 0.05},
        "label_shift": {"classes": classes, "source": src_p.tolist(), "target": tgt_p.tolist(),
                        "total_variation": float(0.5 * np.abs(src_p - tgt_p).sum())},
        "embedding": {"method": "pca", "file": rd.embedding_npz.name},
        "layers": [{"name": name, "mmd2": mmd2, "p_value": p, "p_adjusted": min(1.0, 3 * p), "shifted": 3 * p < 0.05,
                    "proxy_a_distance": pad, "c2st_accuracy": 0.5 + pad / 4, "c2st_p_value": p, "frechet": 40 * mmd2,
                    "n_source": n, "n_target": n}
                   for name, mmd2, p, pad in (("layer1", 0.002, 0.4, 0.1), ("layer4", 0.08, 0.002, 1.1),
                                              ("penultimate", 0.21, mmd_p, proxy_a))],
        "interpretation": ["Source and target features differ clearly (MMD p = 0.001).",
                           "A classifier tells the domains apart 83% of the time (chance is 50%)."],
    })


def write_analysis(rd: RunDir, classes: list[str], rng: np.random.Generator, *, scores: dict | None = None,
                   proxy_a: float = 1.4, mmd_p: float = 0.001) -> None:
    n = 120
    source = rng.normal(0, 1, (n, 8)).astype(np.float32)
    target = rng.normal(0.8, 1, (n, 8)).astype(np.float32)
    labels = np.arange(n) % len(classes)
    write_npz(rd.features_npz, pretrained__source__penultimate=source,
              pretrained__target__penultimate=target, source__labels=labels, target__labels=labels)
    xy = np.concatenate([source[:, :2], target[:, :2]]).astype(np.float64)
    write_npz(rd.embedding_npz, xy=xy, domain=np.repeat([0, 1], n), label=np.tile(labels, 2))
    _write_shift(rd, classes, n, rng, proxy_a=proxy_a, mmd_p=mmd_p)
    layers = ["conv1", "layer1", "layer2", "layer3", "layer4", "fc"]
    cka = np.linspace(0.98, 0.35, len(layers))
    write_json(rd.similarity_json, {"arm": "transfer", "seed": 0, "layers": [
        {"name": name, "cka_linear": float(k), "cka_debiased": float(k - 0.05), "weight_change": float(0.02 + 0.1 * i)}
        for i, (name, k) in enumerate(zip(layers, cka))]})
    scores = scores or {"logme": 1.23, "leep": -0.87, "nce": -0.65, "h_score": 2.1, "h_score_shrinkage": None}
    write_json(rd.transferability_json, {
        "model": "pretrained", "split": "train", "n": 400, "scores": scores,
        "not_applicable": {k: "needs the source head's class probabilities" for k, v in scores.items() if v is None},
        "seconds": {k: 0.05 for k in scores},
    })


def _blob(size: int, cy: float, cx: float, width: float) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size] / size
    return np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * width ** 2))


def write_explanations(rd: RunDir, classes: list[str], rng: np.random.Generator, *, n: int = 3, size: int = 16,
                       channels: int = 1, arms: tuple[str, ...] = ("transfer", "scratch"),
                       flagged: str | None = "lime") -> None:
    images = np.stack([np.stack([_blob(size, *rng.uniform(0.3, 0.7, 2), 0.15)] * channels) for _ in range(n)])
    maps = {}
    for method in METHODS:
        for arm in arms:
            maps[f"{method}__{arm}"] = np.stack([_blob(size, *rng.uniform(0.2, 0.8, 2), 0.2) for _ in range(n)])
    write_npz(rd.maps_npz, images=images.astype(np.float32), **{k: v.astype(np.float32) for k, v in maps.items()})
    examples = []
    for i in range(n):
        label = i % len(classes)
        pred = {arm: label if (i + j) % 3 else (label + 1) % len(classes) for j, arm in enumerate(arms)}
        examples.append({"index": 7 * i, "label": label, "pred": pred,
                         "correct": {arm: pred[arm] == label for arm in arms}})
    write_json(rd.index_json, {
        "kind": IMAGE, "methods": list(METHODS), "arms": list(arms), "seed": 0,
        "params": {"target": "label", "agreement": {"topk": 0.1}, "lime": {"num_samples": 200}},
        "examples": examples,
        "agreement": {m: {"spearman": rng.uniform(0, 1, n).tolist(), "topk_overlap": rng.uniform(0, 1, n).tolist()}
                      for m in METHODS},
        "sanity": {m: {"similarity_after_randomisation": 0.92 if m == flagged else 0.21, "flagged": m == flagged}
                   for m in METHODS},
        "faithfulness": {m: {arm: {"deletion_auc": 0.2, "insertion_auc": 0.7} for arm in arms} for m in METHODS},
        "shap_additivity_gap": {arm: [1e-4] * n for arm in arms},
    })


def write_full_run(root: str | Path, *, classes: list[str] | None = None, seeds: tuple[int, ...] = (0, 1, 2),
                   transfer_acc: float = 0.85, scratch_acc: float = 0.72, n_test: int = 60, epochs: int = 8,
                   n_explained: int = 3, size: int = 16, channels: int = 1, strategy: str = "linear-probe",
                   scores: dict | None = None, proxy_a: float = 1.4, mmd_p: float = 0.001, flagged: str | None = "lime",
                   shots: bool = True, seed: int = 0) -> Path:
    """Every file of docs/rundir.md, small arrays, consistent numbers."""
    rng = np.random.default_rng(seed)
    classes = classes or [f"class {i}" for i in range(5)]
    rd = RunDir(root)
    write_run_json(rd, strategy=strategy)
    write_data_json(rd, classes, n_test=n_test, size=size, channels=channels)
    for arm, base, phase in (("transfer", transfer_acc, strategy), ("scratch", scratch_acc, "scratch")):
        for s in seeds:
            write_arm_seed(rd, arm, s, float(np.clip(base + rng.normal(0, 0.02), 0.05, 1.0)), len(classes),
                           n_test=n_test, epochs=epochs, rng=rng, phase=phase)
    write_verdict(rd)
    if shots:
        write_shots(rd)
    write_analysis(rd, classes, rng, scores=scores, proxy_a=proxy_a, mmd_p=mmd_p)
    write_explanations(rd, classes, rng, n=n_explained, size=size, channels=channels, flagged=flagged)
    return rd.root


def write_minimal_run(root: str | Path, *, classes: list[str] | None = None) -> Path:
    """run.json, data.json and one transfer seed with metrics only: the least a report needs."""
    classes = classes or ["cat", "dog", "bird"]
    rd = RunDir(root)
    write_run_json(rd)
    write_data_json(rd, classes, n_test=30)
    write_json(rd.seed("transfer", 0).metrics_json, {
        "test": {"accuracy": 0.8, "macro_f1": 0.78, "loss": 0.6}, "val": {"accuracy": 0.82},
        "epochs_run": 5, "train_seconds": 3.2, "best_epoch": 4})
    return rd.root
