"""``xferdiag rank``: which pretrained model should I start from? Score candidates before training.

Each candidate's backbone runs once over the target training split; LogME, LEEP, NCE and H-score
are all computed from those features (and the source head's outputs where the candidate has one).
Candidates are ranked by LogME, the score that needs no source head and held up best in You et
al. (2021); every score is kept in the table so a reader can rank by another.

A candidate without pretrained weights (``resnet18``, ``builtin:efficientnet-lite0:random``) is a
random-initialisation reference: it shows how far random features get on the target, so a pretrained
candidate scoring near it brings little. References are listed after the ranking, marked, and left
out of it unless asked (``include_random``): the question rank answers is which pretrained model to
start from, and a random start is what the scratch arm of ``finetune`` measures properly.

A task may score its candidates itself (detection: backbones under ``--model``'s detector family, scored on their
boxes): its optional ``rank_candidates`` hook (see :class:`xferdiag.tasks.base.Task`) returns the rows, ranking.json's
record and the score columns; the ordering, the table and the files are the same for every task.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

from .. import rundir
from ..analyzers.transferability import transferability_scores
from ..config import RunConfig, parse_shots
from ..data import Domain, split_target
from ..engine.features import extract_features
from ..engine.trainer import seed_everything
from ..environment import choose_device
from ..errors import ConfigError, ModelError
from ..modalities.descriptor import describe_modality
from ..modalities.loading import load_domain
from ..modalities.registry import keep_whole
from ..models import (
    InputRequest,
    ModelSource,
    build_transfer_model,
    input_lines,
    load_pretrained_classifier,
    resolve_input,
    resolve_input_spec,
)
from ..models.surgery import classifier_layer
from ..rundir.layout import RANKING_CSV, RANKING_JSON
from ..tasks.descriptor import describe_task
from ..tasks.registry import task_for

SCORES = ("logme", "leep", "nce", "h_score", "h_score_shrinkage")
INIT = {True: "pretrained", False: "random reference"}  # ranking.csv's and the table's words for where weights start


def parse_candidate(text: str) -> tuple[str, str | None]:
    """``ARCH``, ``ARCH:WEIGHTS`` or ``ARCH=CHECKPOINT`` (a local state_dict). A text model (``hf:DIR``,
    ``builtin:minilm``) takes its weights from its directory, so an ``=`` there belongs to its options
    (``hf:DIR:pool=cls``)."""
    model, sep, checkpoint = text.partition("=")
    if ModelSource.parse(model).from_directory:
        return text, None
    if sep and not checkpoint:
        raise ConfigError(f"candidate {text!r}: give a checkpoint after '=' (ARCH=FILE)")
    return model, checkpoint or None


def whole_texts(domain: Domain, candidates: list[str], request: InputRequest) -> np.ndarray | None:
    """For truncation off (--no-truncate): which texts fit in --max-length tokens of every text candidate's
    tokenizer, so every candidate is scored on the same texts, each read whole; the error of
    :func:`~xferdiag.modalities.registry.keep_whole` when none fits; None for data no model cuts."""
    if not describe_modality(domain.kind).cuts_long_inputs:
        return None
    sources = [ModelSource.parse(parse_candidate(candidate)[0]) for candidate in candidates]
    specs = [resolve_input_spec(source, None, request) for source in sources if source.input_kind == domain.kind]
    return keep_whole(domain, specs, truncate=False)


@torch.inference_mode()
def score_candidate(candidate: str, splits, request: InputRequest, device, quiet: bool = False) -> dict:
    """One pass of the candidate's backbone over the training split; every score from the same features. Weights a
    candidate does not load (a random reference's, a new head's) are drawn from seed 0, so a rerun scores the same."""
    arch, checkpoint = parse_candidate(candidate)
    source = ModelSource.parse(arch)
    start = time.perf_counter()
    seed_everything(0)
    classifier = load_pretrained_classifier(source, checkpoint)
    spec, choice = resolve_input(source, classifier, request, splits.domain.image_sizes(), plain=splits.domain.plain_input())
    splits.domain.check_fits(spec)
    try:
        model = build_transfer_model(source, len(splits.domain.classes), pretrained=classifier, input_spec=spec)
    except ModelError as exc:
        raise ModelError(f"candidate {candidate!r}: {exc}; the data are {splits.domain.describe()}") from None
    for line in [] if quiet else input_lines(choice, checkpoint=checkpoint is not None, model=candidate):
        print(line, file=sys.stderr)
    model = model.to(device).eval()
    features, _ = extract_features(model.backbone, splits.dataset("train", spec), device=device)
    labels = splits.domain.labels[splits.indices["train"]]
    probs = None
    if classifier is not None and describe_modality(spec.kind).source_head:
        _, head, _ = classifier_layer(classifier)
        weight = head.weight.flatten(1).to(device)  # a 1x1-convolution classifier acts on pooled features as a Linear
        logits = torch.nn.functional.linear(features.to(device), weight, None if head.bias is None else head.bias.to(device))
        probs = logits.float().softmax(1).cpu().numpy()
    extracted = time.perf_counter() - start
    result = transferability_scores(features.numpy(), labels, probs)
    if classifier is None:
        result["not_applicable"] = {**result["not_applicable"], "note": "no pretrained weights: a random-initialisation reference"}
    return {"candidate": candidate, "pretrained": classifier is not None, "init": INIT[classifier is not None], **result["scores"],
            "not_applicable": result["not_applicable"], "notes": result["notes"], "feature_seconds": extracted,
            "score_seconds": sum(result["seconds"].values()), "seconds": time.perf_counter() - start}


def order(rows: list[dict], include_random: bool = False) -> list[dict]:
    """Ranked candidates by LogME, best first (``rank`` 1, 2, ...), then the random-initialisation references by
    LogME with ``rank`` None; with ``include_random`` every candidate is ranked (references stay marked)."""
    ranked = sorted((r for r in rows if r["pretrained"] or include_random), key=lambda r: -r["logme"])
    references = sorted((r for r in rows if not (r["pretrained"] or include_random)), key=lambda r: -r["logme"])
    for position, row in enumerate(ranked, 1):
        row["rank"] = position
    for row in references:
        row["rank"] = None
    return ranked + references


def table_lines(rows: list[dict], scores: tuple[str, ...] = SCORES) -> list[str]:
    """The terminal's table: every candidate's scores, with where its weights start; unranked references under
    a line of their own, and one line when no candidate is pretrained."""
    width = max([40, *(len(r["candidate"]) for r in rows)])

    def line(row: dict) -> str:
        cells = " ".join(f"{row[s]:>17.4f}" if row[s] is not None else f"{'n/a':>17}" for s in scores)
        rank = row["rank"] if row["rank"] is not None else "-"
        return f"{rank:>4}  {row['candidate']:<{width}} {row['init']:<16} {cells} {row['seconds']:>8.2f}"

    lines = [f"{'rank':>4}  {'candidate':<{width}} {'init':<16} " + " ".join(f"{s:>17}" for s in scores) + f" {'seconds':>8}"]
    lines += [line(r) for r in rows if r["rank"] is not None]
    references = [r for r in rows if r["rank"] is None]
    if references:
        lines.append("random-initialisation references, not ranked (how far random features get; --include-random ranks them):")
        lines += [line(r) for r in references]
    if not any(r["pretrained"] for r in rows):
        lines.append("no candidate has pretrained weights: give ARCH:WEIGHTS, ARCH=CHECKPOINT or a built-in that ships them")
    return lines


def rank_models(data: str, candidates: list[str], out: str | Path, *, shots="all", val_fraction: float = 0.15,
                test_fraction: float = 0.25, split_seed: int = 0, image_size: int | None = None, max_length: int | None = None,
                truncate: bool = True, device: str = "auto", quiet: bool = False, include_random: bool = False,
                model: str | None = None, detector_scale: str = "cpu") -> list[dict]:
    """Score every candidate on ``data``'s training split; write ranking.json and ranking.csv into ``out``.

    Pretrained candidates are ranked by LogME; random-initialisation references follow, unranked unless
    ``include_random`` (see :func:`order`).

    Texts are cut to ``max_length`` tokens, or with ``truncate`` False the longer ones are left out (of
    the training split as ``finetune --no-truncate`` leaves them out), counted in one warning line and in
    ranking.json's ``left_out``. Each candidate's input size and where it came from go to stderr, unless ``quiet``.
    ``model`` and ``detector_scale`` are for a task whose candidates go under a model (detection: the detector family
    each candidate backbone is put under, and its scale, as ``finetune`` takes them).
    """
    if not candidates:
        raise ConfigError("candidates: give at least one model")
    sizes = parse_shots(shots)
    if len(sizes) != 1:
        raise ConfigError(f"shots: rank scores one training-set size at a time, got {shots!r}")
    config = RunConfig(data=data, image_size=image_size, max_length=max_length, truncate=truncate, device=device,  # one-line errors
                       val_fraction=val_fraction, test_fraction=test_fraction, split_seed=split_seed,
                       detector_scale=detector_scale, **({"model": model} if model else {}))
    task = task_for(config)
    if not describe_task(task.name).supports("rank"):
        raise ConfigError(f"data {data}: rank is {describe_task(task.name).not_yet(task.name)}; 'xferdiag finetune' trains and judges it")
    meta = {"data": data, "split": "train", "ranked_by": "logme", "random_ranked": include_random}
    hook = getattr(task, "rank_candidates", None)
    if hook is not None:
        scored = hook(config, [(c, *parse_candidate(c)) for c in candidates], shots=sizes[0], quiet=quiet)
        rows = order([{**row, "init": INIT[row["pretrained"]]} for row in scored["rows"]], include_random)
        write_ranking(out, {**meta, **scored["meta"]}, rows, task.rank_scores)
        return rows
    rows, extra = _classification_rows(config, candidates, sizes[0], quiet)
    rows = order(rows, include_random)
    write_ranking(out, {**meta, **extra}, rows)
    return rows


def _classification_rows(config: RunConfig, candidates: list[str], shots, quiet: bool) -> tuple[list[dict], dict]:
    """Every candidate's row on a classification target (:func:`score_candidate`) and ranking.json's ``n`` (and
    ``left_out``, with truncation off)."""
    request = InputRequest(image_size=config.image_size, max_length=config.max_length)
    domain = load_domain(config.data)
    keep = None if config.truncate else whole_texts(domain, candidates, request)
    splits = split_target(domain, config.val_fraction, config.test_fraction, config.split_seed, shots, keep)
    if splits.left_out.get("train"):
        print(f"xferdiag: warning: {splits.left_out['train']} of {splits.left_out['train'] + len(splits.indices['train'])} "
              "training texts do not fit in --max-length tokens of every candidate and are left out of the scores "
              "(--no-truncate)", file=sys.stderr)
    dev = choose_device(config.device)
    rows = [score_candidate(candidate, splits, request, dev, quiet) for candidate in candidates]
    return rows, {"n": int(len(splits.indices["train"])), **({"left_out": splits.left_out["train"]} if keep is not None else {})}


def rank_scores(config: RunConfig) -> tuple[str, ...]:
    """The score columns of ``config``'s task: its ``rank_scores`` where it scores its own candidates, else :data:`SCORES`."""
    return getattr(task_for(config), "rank_scores", SCORES)


def write_ranking(out: str | Path, meta: dict, rows: list[dict], scores: tuple[str, ...] = SCORES) -> None:
    """ranking.json (``meta`` and the candidates) and ranking.csv (one row per candidate, ``init`` saying pretrained or
    random reference, ``rank`` empty for an unranked reference, one column per score)."""
    columns = ["rank", "candidate", "init", *scores, "seconds"]
    rundir.write_json(Path(out) / RANKING_JSON, {**meta, "candidates": rows})
    rundir.write_csv(Path(out) / RANKING_CSV, columns, [[row[c] for c in columns] for row in rows])
