"""``xferdiag explain``: Grad-CAM, SHAP and LIME for the transfer and scratch models, side by side.

The same test examples (seeded, stratified, misclassified ones included) are explained for every
arm; maps, agreement, sanity and faithfulness results are stored under ``explanations/`` so the
report never recomputes them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from . import rundir
from .analysis import RunModels
from .config import RunConfig
from .data import load_domain, split_target
from .environment import choose_device
from .errors import InputError
from .explain import explain_models, pick_examples
from .explain.run import METHODS
from .models import WithNormalization

BACKGROUND_SIZE = 32


def parse_methods(methods) -> list[str]:
    names = [m.strip() for m in methods.split(",")] if isinstance(methods, str) else list(methods)
    unknown = [m for m in names if m not in METHODS]
    if unknown or not names:
        raise InputError(f"--methods: unknown method(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(METHODS)}")
    return names


def explain_run(run_dir: str | Path, *, methods=METHODS, n: int = 8, seed: int = 0, lime_samples: int = 1000,
                shap_samples: int = 200, quiet: bool = False, force: bool = False) -> dict:
    """Explain ``n`` test examples for every arm; reuse ``explanations/`` when asked for the same thing."""
    methods = parse_methods(methods)
    run = rundir.RunDir(run_dir)
    meta = run.check()
    params = {"methods": methods, "n": n, "seed": seed, "lime_samples": lime_samples, "shap_samples": shap_samples}
    index_path = run.explanations / "index.json"
    if index_path.is_file() and not force:
        existing = rundir.read_json(index_path)
        if existing.get("request") == params and (run.explanations / "maps.npz").is_file():
            return existing

    config = RunConfig.from_dict(meta["config"], source=str(run.run_json))
    data = rundir.read_json(run.data_json)
    device = choose_device(config.device)
    models = RunModels(run, config, len(data["classes"]), device)
    target = load_domain(config.data)
    splits = split_target(target, config.val_fraction, config.test_fraction, config.split_seed, config.shots[0])
    test_idx = splits.indices["test"]
    labels = target.labels[test_idx]
    predictions = {arm: rundir.read_npz(run.seed_dir(arm, s) / "predictions.npz")["predictions"] for arm, (s, _) in models.arms.items()}
    picked = pick_examples(labels, predictions, n, seed)

    spec = models.input_spec
    images = target.unit_images(test_idx[picked], spec)
    train_idx = splits.indices["train"]
    rng = np.random.default_rng(seed)
    background = target.unit_images(np.sort(rng.choice(train_idx, min(BACKGROUND_SIZE, len(train_idx)), replace=False)), spec)
    wrapped = {arm: WithNormalization(model, spec).to(device).eval() for arm, (_, model) in models.arms.items()}
    torch.manual_seed(seed)
    index, maps = explain_models(
        wrapped, images, labels[picked], background, methods=methods, seed=seed, lime_samples=lime_samples,
        shap_samples=shap_samples, progress=not quiet, example_ids=picked,
    )
    index["request"] = params
    index["seeds_explained"] = {arm: s for arm, (s, _) in models.arms.items()}
    rundir.write_npz(run.explanations / "maps.npz", **maps)
    rundir.write_json(index_path, index)  # last: its presence means the maps are complete
    return index
