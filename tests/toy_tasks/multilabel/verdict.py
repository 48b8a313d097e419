"""The toy task's verdict: the mAP gap seed by seed from the stored label scores, its test-set noise from a
paired bootstrap over test examples shared by every seed and both arms, combined over seeds as detection's is
(:func:`xferdiag.negative.bootstrap_components_verdict`); an arm whose mAP is not above the label prior's
(each label scored by its frequency: AP equals the label's share) did not learn."""

from __future__ import annotations

import numpy as np

from xferdiag.errors import RunDirError
from xferdiag.negative import bootstrap_components, bootstrap_components_verdict
from xferdiag.tasks.base import Judged

from .metrics import mean_ap, resample_weights

ROLES = ("transfer-did-not-learn", "baseline-did-not-learn")
N_BOOT = 500


def _scores(seed: dict) -> dict:
    if "label_scores" not in seed["records"]:
        raise RunDirError(f"{seed['name']}: holds no label scores; the verdict needs them")
    return seed["records"]["label_scores"]


def _truth(a: list[dict], b: list[dict]) -> np.ndarray:
    truth = _scores(a[0])["truth"]
    if any(not np.array_equal(_scores(s)["truth"], truth) for s in [*a, *b]):
        raise RunDirError("the seeds were tested on different examples (their label sets differ)")
    return truth


def prior_map(truth: np.ndarray) -> float:
    """mAP of scoring every label by a constant: each label's AP is its share of the examples."""
    present = truth.any(axis=0)
    return float(truth[:, present].mean(axis=0).mean())


def _warnings(arms, seeds, maps: dict, prior: float) -> list[dict]:
    out = []
    for arm, code in zip(arms, ROLES):
        flagged = [s for s, v in zip(seeds, maps[arm]) if not v > prior + 1e-9]  # a constant score's AP is the prior, up to rounding
        if flagged:
            out.append({"code": code, "arm": arm, "message": f"the {arm} arm did not learn: test mAP {min(maps[arm]):.3f} is not "
                        f"above the {prior:.3f} of scoring each label by its frequency",
                        "evidence": {"seeds_flagged": flagged, "seeds": len(seeds), "map_min": float(min(maps[arm])),
                                     "prior_map": prior}})
    return out


def judge(a: list[dict], b: list[dict], *, arms: tuple[str, str], seeds: list[int], data: dict, run_records: dict,
          alpha: float) -> Judged:
    truth = _truth(a, b)
    weights = resample_weights(len(truth), N_BOOT, seed=0)
    maps = {arm: [mean_ap(_scores(s)["scores"], truth) for s in runs] for arm, runs in zip(arms, (a, b))}
    boot = {arm: np.stack([mean_ap(_scores(s)["scores"], truth, weights) for s in runs], axis=1) for arm, runs in zip(arms, (a, b))}
    observed = np.array(maps[arms[0]]) - np.array(maps[arms[1]])
    replicates = boot[arms[0]] - boot[arms[1]]
    replicates = replicates[np.isfinite(replicates).all(axis=1)]
    verdict = bootstrap_components_verdict(observed, replicates, n_test=len(truth), alpha=alpha, unit="examples")
    per_seed = [{"seed": s, arms[0]: ma, arms[1]: mb, "gap": float(g)}
                for s, ma, mb, g in zip(seeds, maps[arms[0]], maps[arms[1]], observed)]
    components = bootstrap_components(observed, replicates) if len(seeds) > 1 else None
    prior = prior_map(truth)
    return Judged(verdict, "map", per_seed, {"prior_map": prior}, _warnings(arms, seeds, maps, prior), components, verdict.note)
