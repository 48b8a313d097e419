"""``xferdiag explain``: Grad-CAM, SHAP and LIME for the transfer and scratch models, side by side.

The same test examples (seeded, stratified, misclassified ones included) are explained for every
arm; maps, agreement, sanity and faithfulness results are stored under ``explanations/`` so the
report never recomputes them. Tables get per-feature attributions instead of maps: Kernel SHAP and
LIME with the feature names (Grad-CAM needs images and is skipped).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .. import rundir
from .analyze import RunModels, run_config
from ..data import load_domain, split_target
from ..environment import choose_device
from ..errors import InputError
from ..explainers import explain_models, lime_tabular, pick_examples, shap_tabular, spearman_agreement, topk_overlap
from ..explainers.run import METHODS
from ..models import WithNormalization

BACKGROUND_SIZE = 32
TABLE_METHODS = ("shap", "lime")
TOPK = 0.1


def parse_methods(methods) -> list[str]:
    names = [m.strip() for m in methods.split(",")] if isinstance(methods, str) else list(methods)
    unknown = [m for m in names if m not in METHODS]
    if unknown or not names:
        raise InputError(f"--methods: unknown method(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(METHODS)}")
    return names


@rundir.holds_lock  # one writer per run directory (docs/guarantees.md)
def explain_run(run_dir: str | Path, *, methods=METHODS, n: int = 8, seed: int = 0, lime_samples: int = 1000,
                shap_samples: int = 200, quiet: bool = False, force: bool = False) -> dict:
    """Explain ``n`` test examples for every arm; reuse ``explanations/`` when asked for the same thing."""
    methods = parse_methods(methods)
    run = rundir.RunDir(run_dir)
    meta = rundir.validate(run_dir)
    params = {"methods": methods, "n": n, "seed": seed, "lime_samples": lime_samples, "shap_samples": shap_samples}
    index_path = run.explanations / "index.json"
    if index_path.is_file() and not force:
        existing = rundir.read_json(index_path)
        if existing.get("request") == params and (run.explanations / "maps.npz").is_file():
            return existing

    config = run_config(run, meta)
    data = rundir.read_json(run.data_json)
    device = choose_device(config.device)
    models = RunModels(run, config, len(data["classes"]), device, recorded_input=meta.get("input"))
    target = load_domain(config.data)
    splits = split_target(target, config.val_fraction, config.test_fraction, config.split_seed, config.shots[0])
    test_idx = splits.indices["test"]
    labels = target.labels[test_idx]
    predictions = {arm: rundir.read_npz(run.seed_dir(arm, s) / "predictions.npz")["predictions"] for arm, (s, _) in models.arms.items()}
    picked = pick_examples(labels, predictions, n, seed)

    train_idx = splits.indices["train"]
    torch.manual_seed(seed)
    if target.table is not None:
        arms = {arm: model for arm, (_, model) in models.arms.items()}
        index, maps = explain_table(arms, target.table[test_idx[picked]], labels[picked], target.table[train_idx],
                                    target.feature_names, methods=methods, seed=seed, lime_samples=lime_samples,
                                    shap_samples=shap_samples, example_ids=picked)
    else:
        spec = models.input_spec
        images = target.unit_images(test_idx[picked], spec)
        rng = np.random.default_rng(seed)
        background = target.unit_images(np.sort(rng.choice(train_idx, min(BACKGROUND_SIZE, len(train_idx)), replace=False)), spec)
        wrapped = {arm: WithNormalization(model, spec).to(device).eval() for arm, (_, model) in models.arms.items()}
        index, maps = explain_models(
            wrapped, images, labels[picked], background, methods=methods, seed=seed, lime_samples=lime_samples,
            shap_samples=shap_samples, progress=not quiet, example_ids=picked,
        )
    index["request"] = params
    index["seeds_explained"] = {arm: s for arm, (s, _) in models.arms.items()}
    rundir.write_npz(run.explanations / "maps.npz", **maps)
    rundir.write_json(index_path, index)  # last: its presence means the maps are complete
    return index


def _probabilities(model: torch.nn.Module):
    """The explainers' view of a table model: (n, F) raw rows -> (n, C) class probabilities."""
    device = next(model.parameters()).device

    def predict(rows: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.as_tensor(np.asarray(rows), dtype=torch.float32, device=device)
            return torch.softmax(model(x).float(), 1).cpu().numpy()

    return predict


def explain_table(models: dict[str, torch.nn.Module], rows: np.ndarray, labels: np.ndarray, training: np.ndarray,
                  feature_names: list[str], *, methods=TABLE_METHODS, seed: int = 0, lime_samples: int = 1000,
                  shap_samples: int = 200, example_ids=None) -> tuple[dict, dict[str, np.ndarray]]:
    """Kernel SHAP and LIME values of the true class, per feature, for every arm (models in eval mode).

    ``training`` rows are LIME's statistics and, subsampled to BACKGROUND_SIZE (seeded), Kernel
    SHAP's background. Agreement between the first two arms compares |attribution| per example.
    Returns what ``index.json`` and ``maps.npz`` hold (docs/rundir.md, "Tables").
    """
    usable = [m for m in methods if m in TABLE_METHODS]
    if not usable:
        raise InputError(f"--methods: tables are explained with {' and '.join(TABLE_METHODS)}; Grad-CAM needs images")
    arms = list(models)
    ids = np.arange(len(rows)) if example_ids is None else np.asarray(example_ids)
    predict = {arm: _probabilities(model) for arm, model in models.items()}
    preds = {arm: predict[arm](rows).argmax(1) for arm in arms}
    index = {
        "kind": "tabular", "methods": usable, "arms": arms, "seed": seed, "feature_names": list(feature_names),
        "params": {"target": "label", "agreement": {"topk": TOPK, "on": "absolute attributions"},
                   "shap": {"nsamples": shap_samples, "n_background": min(BACKGROUND_SIZE, len(training)),
                            "explainer": "KernelExplainer"},
                   "lime": {"num_samples": lime_samples, "discretizer": "quartile"},
                   "skipped": {m: "needs images" for m in methods if m not in TABLE_METHODS}},
        "examples": [{"index": int(ids[i]), "label": int(labels[i]), "pred": {arm: int(preds[arm][i]) for arm in arms},
                      "correct": {arm: bool(preds[arm][i] == labels[i]) for arm in arms}} for i in range(len(rows))],
        "importance": {}, "base_values": {}, "agreement": {},
    }
    maps = {"rows": rows.astype(np.float32)}
    for method in usable:
        for arm in arms:
            if method == "shap":
                result = shap_tabular(predict[arm], rows, training, feature_names, labels, n_samples=shap_samples,
                                      seed=seed, max_background=BACKGROUND_SIZE)
            else:
                result = lime_tabular(predict[arm], rows, training, feature_names, labels, num_samples=lime_samples, seed=seed)
            maps[f"{method}__{arm}"] = result.values.astype(np.float32)
            index["importance"].setdefault(method, {})[arm] = [{"name": n, "mean_abs": v} for n, v in result.importance]
            index["base_values"].setdefault(method, {})[arm] = result.base_values.tolist()
        if len(arms) >= 2:
            a, b = (np.abs(maps[f"{method}__{arm}"]) for arm in arms[:2])
            index["agreement"][method] = {"spearman": spearman_agreement(a, b).tolist(),
                                          "topk_overlap": topk_overlap(a, b, TOPK).tolist()}
    return index, maps
