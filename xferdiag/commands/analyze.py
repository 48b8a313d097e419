"""``xferdiag analyze``: domain shift, transferability and layer similarity for one run directory.

Features are extracted once (seeded sample, size cap) from the pretrained backbone on source and
target data and from the fine-tuned model on target data, cached in ``analysis/features.npz``,
and every analyzer reads them from there. Results go to ``analysis/*.json`` (docs/rundir.md).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import rundir
from ..analyzers import shift, similarity
from ..analyzers.layer_shift import layer_shift
from ..analyzers.transferability import transferability_scores
from ..engine.features import extract_features, extract_layer_features
from ..errors import DataError, InputError, RunDirError
from ..modalities.descriptor import describe_modality
from ..modalities.registry import keep_whole, modality_of
from ..models import check_layers
from ..report.interpret import interpret_shift
from ..rundir.layout import MODEL_PT
from ..tasks.registry import task_named
from .context import RunContext, RunModels, require_stage

EMBEDDING_POINTS = 500
"""Points per domain in the source-vs-target picture: enough to see clusters, cheap for t-SNE."""


def _sample(n: int, cap: int, seed: int) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).choice(n, cap, replace=False)) if n > cap else np.arange(n)


def _fingerprint(**parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _weight_change(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor], block: str) -> float:
    """Relative change ||w - w0|| / ||w0|| over a block's learnable weights (not BatchNorm statistics)."""
    keys = [k for k in before if k.startswith(f"backbone.{block}.") and "running_" not in k and "num_batches" not in k]
    num = sum((after[k].float() - before[k].float()).pow(2).sum().item() for k in keys)
    den = sum(before[k].float().pow(2).sum().item() for k in keys)
    return float(np.sqrt(num / den)) if den > 0 else 0.0


@rundir.holds_lock  # one writer per run directory (docs/guarantees.md)
def analyze_run(run_dir: str | Path, *, layers: list[str] | None = None, max_samples: int = 1000, n_permutations: int = 1000,
                seed: int = 0, quiet: bool = False, force: bool = False) -> dict:
    """Compute (or reuse) features and write shift, transferability and similarity results; return them."""
    require_stage(run_dir, "analyze")
    context = RunContext(run_dir)
    task = task_named((context.meta.get("config") or {}).get("task"))
    own = getattr(task, "analyze", None)
    if own is not None:  # a task whose analysis is its own (detection: box statistics, image- and instance-level shift)
        results = {"shift": _task_shift(context, own, layers=layers, max_samples=max_samples, n_permutations=n_permutations,
                                        seed=seed)}
        scores = getattr(task, "transferability", None)
        if scores is not None:
            results["transferability"] = scores(context.config, max_samples=max_samples, seed=seed, device=context.device)
            rundir.write_json(context.run.transferability_json, results["transferability"])
        return results
    run, models = context.run, context.models
    if models.classifier is None:
        raise RunDirError(f"{run.run_json}: the config names no pretrained weights ('pretrained_checkpoint' or "
                          "MODEL:WEIGHTS); the analysis compares the fine-tuned model with them")
    blocks = models.pretrained.blocks
    layers = check_layers(list(layers), models.pretrained.layer_trace, blocks) if layers else list(blocks)

    target, source, splits = context.target, context.source, context.splits
    spec, device = context.input_spec, context.device
    pools, left_out = _whole_texts(context, {"target": target, "source": source})
    target_idx = pools["target"][_sample(len(pools["target"]), max_samples, seed)]
    source_idx = pools["source"][_sample(len(pools["source"]), max_samples, seed + 1)] if source is not None else None
    train_idx = splits.indices["train"]

    key = _fingerprint(layers=layers, max_samples=max_samples, seed=seed, config=context.meta["config"],
                       created=context.meta.get("created"), **({"left_out": left_out} if left_out else {}))
    cache = rundir.read_npz(run.features_npz) if run.features_npz.is_file() and not force else {}
    if cache.get("fingerprint", np.array("")).item() != key:
        cache = {}
    steps = [("pretrained", "target", target, target_idx, models.pretrained),
             ("finetuned", "target", target, target_idx, models.arm("transfer")[1]),
             ("pretrained", "train", target, train_idx, models.pretrained)]
    if source is not None:
        steps.insert(0, ("pretrained", "source", source, source_idx, models.pretrained))
    with tqdm(total=len(steps) + 3, desc="analyze", disable=quiet) as bar:
        if _extract(cache, steps, layers, spec, device, bar):
            _check_finite(cache)
            cache["fingerprint"] = np.array(key)
            rundir.write_npz(run.features_npz, compress=False, **cache)

        results: dict = {}
        if source is not None:
            modality = modality_of(target)
            per_input = {modality.input_shift_key: modality.input_shift(source, target, source_idx, target_idx)}
            results["shift"] = _shift(run, cache, n_permutations, seed, len(context.classes), per_input, layers, left_out)
        bar.update(1)
        results["transferability"] = _transferability(run, cache, models, target, train_idx, spec, device)
        bar.update(1)
        results["similarity"] = _similarity(run, cache, models, layers, context.config.strategy)
        bar.update(1)
    return results


def _task_shift(context: RunContext, analysis, **options) -> dict:
    """The task's own shift analysis (shift.json's content) with the report's sentences, written to shift.json."""
    result = analysis(context.config, device=context.device, **options)
    result["interpretation"] = interpret_shift(result)
    rundir.write_json(context.run.shift_json, result)
    return result


def _whole_texts(context: RunContext, domains: dict) -> tuple[dict[str, np.ndarray], dict[str, int] | None]:
    """Per domain (None: absent), the indices the analysis samples from: every example, or in a text run with
    truncation off (--no-truncate) only the texts that fit in --max-length tokens, as the arms trained on; with
    them, how many texts of each domain were left out (None when nothing is left out by rule), said in one
    warning line. A domain with no text short enough ends in one line."""
    present = {name: domain for name, domain in domains.items() if domain is not None}
    modality = describe_modality(context.target.kind)
    if context.config.truncate or not modality.cuts_long_inputs:
        return {name: np.arange(len(domain)) for name, domain in present.items()}, None
    spec, pools = context.input_spec, {}
    for name, domain in present.items():
        try:
            pools[name] = np.flatnonzero(keep_whole(domain, [spec], truncate=False))
        except DataError as exc:
            raise DataError(f"{name} data {domain.spec}: {exc}") from None
    left_out = {name: len(present[name]) - len(pool) for name, pool in pools.items()}
    if any(left_out.values()):
        noun, predicate = modality.long_inputs
        counts = " and ".join(f"{n} of {len(present[name])} {name} {noun}" for name, n in left_out.items())
        print(f"xferdiag: warning: {counts} are {predicate.format(size=spec.size)} and are left out of the "
              "analysis (--no-truncate)", file=sys.stderr)
    return pools, left_out


def _extract(cache: dict, steps: list[tuple], layers: list[str], spec, device, bar) -> bool:
    """Add every step's features that ``cache`` lacks; return whether any were added.

    A backbone whose tensors equal those of another step's on the same examples is not run again:
    a linear probe's fine-tuned backbone is the pretrained one, so the features are the same
    (bit for bit, as two passes gave them) and the backbone runs once over the target sample.
    """
    added = False
    for model_name, domain_name, domain, idx, model in steps:
        if f"{model_name}__{domain_name}__penultimate" not in cache:
            twin = next((name for name, other_domain, _, _, other in steps
                         if other_domain == domain_name and f"{name}__{domain_name}__penultimate" in cache
                         and _same_weights(other.backbone, model.backbone)), None)
            if twin is not None:
                feats = {layer: cache[f"{twin}__{domain_name}__{layer}"] for layer in [*layers, "penultimate"]}
            else:
                extracted = extract_layer_features(model.backbone, domain.dataset(idx, spec), layers, device=device)
                feats = {layer: f.numpy() for layer, f in extracted.items()}
            cache.update({f"{model_name}__{domain_name}__{layer}": f for layer, f in feats.items()})
            cache[f"{domain_name}__labels"] = domain.labels[idx]
            added = True
        bar.update(1)
    return added


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    """Every parameter and buffer equal (the two backbones are built from the same model spec)."""
    state_a, state_b = a.state_dict(), b.state_dict()
    return state_a.keys() == state_b.keys() and all(torch.equal(state_a[k], state_b[k]) for k in state_a)


def _check_finite(cache: dict) -> None:
    """NaN or infinite features name the model, data and layer they came from (not 'x' deep in an analyzer)."""
    for name, values in cache.items():
        if name.count("__") == 2 and np.issubdtype(values.dtype, np.floating) and not np.isfinite(values).all():
            model, domain, layer = name.split("__")
            finetuned = f"the fine-tuned model's weights (arms/transfer/seed-*/{MODEL_PT})"
            origin = finetuned if model == "finetuned" else "the pretrained weights"
            raise InputError(f"features of the {model} model on the {domain} data at layer {layer} contain "
                             f"{int((~np.isfinite(values)).sum())} NaN or infinite values; check {origin} and the data, "
                             "then rerun 'xferdiag analyze --force'")


def _shift(run: rundir.RunDir, cache: dict, n_permutations: int, seed: int, n_classes: int,
           per_input: dict[str, list[dict] | None] | None = None, layers: list[str] = (), left_out: dict | None = None) -> dict:
    """Shift in the pretrained model's penultimate features, the same test at every layer, plus the
    modality's per-input-feature shift; ``left_out``: texts too long to read whole, per domain (--no-truncate)."""
    x, y = cache["pretrained__source__penultimate"], cache["pretrained__target__penultimate"]
    embedding = similarity.embed_2d(x, y, seed=seed, max_points=EMBEDDING_POINTS)
    labels = np.concatenate([cache["source__labels"], cache["target__labels"]])
    offsets = np.where(embedding.domain == 0, 0, len(x))
    rundir.write_npz(run.embedding_npz, xy=embedding.xy, domain=embedding.domain, label=labels[embedding.index + offsets])
    result = {
        "layer": "penultimate", "model": "pretrained", "n_source": len(x), "n_target": len(y),
        **shift.two_sample_shift(x, y, seed=seed, n_permutations=n_permutations),
        "label_shift": shift.label_shift(cache["source__labels"], cache["target__labels"], n_classes=n_classes).to_dict(),
        "embedding": {"method": embedding.method, "file": run.embedding_npz.name},
        "layers": layer_shift({name: cache[f"pretrained__source__{name}"] for name in [*layers, "penultimate"]},
                              {name: cache[f"pretrained__target__{name}"] for name in [*layers, "penultimate"]}, seed=seed),
    }
    result.update({key: rows for key, rows in (per_input or {}).items() if rows is not None})
    if left_out is not None:
        result["left_out"] = left_out
    result["interpretation"] = interpret_shift(result)
    rundir.write_json(run.shift_json, result)
    return result


def _transferability(run, cache, models: RunModels, target, train_idx, spec, device) -> dict:
    """Scores of the pretrained model on the target training split, before any fine-tuning."""
    features = cache["pretrained__train__penultimate"]
    labels = cache["train__labels"]
    probs = None
    if models.classifier is not None and describe_modality(spec.kind).source_head:
        logits, _ = extract_features(models.classifier.to(device), target.dataset(train_idx, spec), device=device)
        probs = logits.softmax(1).numpy()
    result = {"model": "pretrained", "split": "train", "n": len(labels), **transferability_scores(features, labels, probs)}
    rundir.write_json(run.transferability_json, result)
    return result


def _similarity(run, cache, models: RunModels, layers: list[str], strategy: str) -> dict:
    """CKA and weight change per layer; a layer whose features cannot be compared is listed with the reason."""
    seed, finetuned = models.arm("transfer")
    before = models.pretrained.state_dict()
    after = finetuned.state_dict()
    rows = []
    for layer in [*layers, "penultimate"]:
        a, b = cache[f"pretrained__target__{layer}"], cache[f"finetuned__target__{layer}"]
        row = {"name": layer, "weight_change": _weight_change(before, after, layer) if layer != "penultimate" else None}
        try:
            row.update(cka_linear=similarity.linear_cka(a, b), cka_debiased=similarity.linear_cka(a, b, debiased=True))
        except InputError as exc:
            row.update(cka_linear=None, cka_debiased=None, skipped=f"CKA not computed: {exc}")
        rows.append(row)
    result = {"arm": "transfer", "seed": seed, "strategy": strategy, "layers": rows}
    rundir.write_json(run.similarity_json, result)
    return result
