"""``xferdiag explain``: Grad-CAM, SHAP and LIME for the transfer and scratch models, side by side.

The same test examples (seeded, stratified, misclassified ones included) are explained for every
arm; maps, agreement, sanity and faithfulness results are stored under ``explanations/`` so the
report never recomputes them. The data's modality (:mod:`xferdiag.modalities`) decides how: tables
get per-feature attributions instead of maps, Kernel SHAP and LIME with the feature names
(Grad-CAM needs images and is skipped).
"""

from __future__ import annotations

from pathlib import Path

import torch

from .. import rundir
from ..config import DEFAULT_BUDGET, Budget
from ..errors import InputError
from ..explainers import pick_examples
from ..explainers.budget import as_budget
from ..modalities.registry import METHODS, ExplainJob, modality_of
from ..rundir.evidence import run_records, seed_records
from ..tasks.base import RunInputs
from ..tasks.descriptor import describe_task
from ..tasks.registry import task_named
from .context import RunContext, require_stage


def parse_methods(methods) -> list[str]:
    names = [m.strip() for m in methods.split(",")] if isinstance(methods, str) else list(methods)
    unknown = [m for m in names if m not in METHODS]
    if unknown or not names:
        raise InputError(f"methods: unknown method(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(METHODS)}")
    return names


@rundir.holds_lock  # one writer per run directory (docs/guarantees.md)
def explain_run(run_dir: str | Path, *, methods=METHODS, n: int = 8, seed: int = 0, lime_samples: int = 1000,
                shap_samples: int = 200, budget: Budget | float | None = DEFAULT_BUDGET, quiet: bool = False,
                force: bool = False) -> dict:
    """Explain ``n`` test examples for every arm; reuse ``explanations/`` when asked for the same thing.

    ``budget``: seconds the image or text explanations may take (estimated before they start; sizes are cut
    to fit and the cuts recorded; seconds below what one example needs are an error, while the
    default budget then explains one example at the smallest sizes); None explains exactly what is asked."""
    methods = parse_methods(methods)
    budget = as_budget(budget)
    require_stage(run_dir, "explain")
    context = RunContext(run_dir)
    run = context.run
    params = {"methods": methods, "n": n, "seed": seed, "lime_samples": lime_samples, "shap_samples": shap_samples,
              "budget": None if budget is None else budget.seconds}
    if run.index_json.is_file() and not force:
        existing = rundir.read_json(run.index_json)
        if existing.get("request") == params and run.maps_npz.is_file():
            return existing

    torch.manual_seed(seed)
    task = (context.meta.get("config") or {}).get("task")
    own = getattr(task_named(task), "explain", None)
    if own is not None:  # a task whose explanations are its own (detection: D-RISE and EigenCAM per box)
        inputs = _run_inputs(context, describe_task(task).records)
        index, maps = own(inputs, n=n, seed=seed, budget=budget, progress=not quiet)
        index["seeds_explained"] = {arm: s for arm, (s, _) in inputs.models.items()}
    else:
        job = _job(context, n, seed)
        index, maps = modality_of(job.domain).explain(job, methods=methods, seed=seed, lime_samples=lime_samples,
                                                      shap_samples=shap_samples, budget=budget, progress=not quiet)
        index["seeds_explained"] = {arm: s for arm, (s, _) in context.models.arms.items()}
    index["request"] = params
    rundir.write_npz(run.maps_npz, **maps)
    rundir.write_json(run.index_json, index)  # last: its presence means the maps are complete
    return index


def _run_inputs(context: RunContext, records: tuple[str, ...]) -> RunInputs:
    """What a task's own explain reads: every finished arm's first seed (its model file and test records)."""
    run = context.run
    seeds = {arm: found[0] for arm in run.arms() if (found := run.seeds(arm))}
    return RunInputs(context.config, {arm: (s, run.seed(arm, s).model_pt) for arm, s in seeds.items()},
                     {arm: seed_records(run.seed(arm, s), records) for arm, s in seeds.items()}, run_records(run), context.device)


def _job(context: RunContext, n: int, seed: int) -> ExplainJob:
    """``n`` test examples picked from the arms' recorded predictions, with every arm's model."""
    models = context.models
    target, splits = context.target, context.splits
    test_idx = splits.indices["test"]
    labels = target.labels[test_idx]
    predictions = {arm: rundir.read_predictions(context.run.seed(arm, s)).predictions for arm, (s, _) in models.arms.items()}
    picked = pick_examples(labels, predictions, n, seed)
    return ExplainJob(target, test_idx[picked], labels[picked], picked, splits.indices["train"],
                      {arm: model for arm, (_, model) in models.arms.items()}, context.input_spec, context.device)
