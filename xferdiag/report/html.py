"""Render one run directory into one self-contained, offline HTML report.

Everything is read and drawn in memory first and the file is written atomically at the end, so a
failure never leaves a half-written report or touches an existing one. Each optional file of the
run directory feeds one section; a missing file becomes a line under "Not in this report" instead
of an error, while a corrupt one raises :class:`RunDirError` naming it. Jinja2 autoescapes every
value, so class names, paths and config values from users reach the page only as text.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import markupsafe
import numpy as np

from .._version import __version__
from ..errors import RunDirError
from ..rundir import STANDARD_ARMS, RunDir, read_csv, read_json, read_npz, validate, write_text
from . import fmt, plots
from .recommend import DID_NOT_LEARN, FROZEN_STRATEGIES, Facts, did_not_learn_warnings, recommend

TEMPLATES = Path(__file__).parent / "templates"
HISTORY_COLUMNS = ("epoch", "train_loss", "val_loss", "val_accuracy")  # the ones the curves draw
MAX_CLASS_ROWS = 20
MAX_GALLERY = 24
MAX_FEATURE_ROWS = 30  # per-feature shift table
MAX_FEATURE_BARS = 15  # per-feature shift chart
TOP_FEATURES = 8  # per example and panel of a tabular explanation
SUMMARY_FEATURES = 12  # mean |attribution| chart
KEPT_CKA = 0.9  # a layer at or above this CKA kept its pretrained representation almost unchanged
SCORES = {  # name, what it measures; for every score higher means better expected transfer
    "logme": ("LogME", "evidence of a linear model on the pretrained features"),
    "leep": ("LEEP", "log-likelihood of target labels through the source classifier's predictions"),
    "nce": ("NCE", "negative conditional entropy of target labels given source predictions"),
    "h_score": ("H-score", "how well the features separate the target classes"),
    "h_score_shrinkage": ("H-score (shrinkage)", "H-score with a shrunk covariance, stabler for few examples"),
}


@dataclass
class Report:
    """A rendered report: the HTML text, what it lacks, and where it was saved."""

    html: str
    missing: list[str] = field(default_factory=list)
    path: Path | None = None

    def save(self, path: str | Path) -> Path:
        """Write atomically: the old file stays intact until the new one is complete."""
        self.path = Path(path)
        write_text(self.path, self.html)
        return self.path

    def _repr_html_(self) -> str:
        """Jupyter display in an iframe, so the report's CSS cannot restyle the notebook around it."""
        return (f'<iframe srcdoc="{markupsafe.escape(self.html)}" title="xferdiag report" '
                'style="width:100%;height:80vh;border:1px solid #d1d5db;border-radius:6px"></iframe>')


@functools.cache
def jinja_env() -> jinja2.Environment:
    """Autoescaping on for every template: values from run files only ever reach the page as text."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(num=fmt.num, pct=fmt.pct, points=fmt.points, ci_points=fmt.ci_points,
                       pval=fmt.pval, seconds=fmt.seconds)
    return env


def stamp() -> dict:
    """The version and time printed in every page's footer."""
    return {"version": __version__,
            "generated": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def render_report(run_dir: str | Path, out: str | Path | None = None, missing_ok: bool = True) -> Report:
    """Render ``run_dir`` to ``out`` (default RUN_DIR/report.html) and return the :class:`Report`.

    Sections whose files are absent are listed in ``Report.missing`` and on the page; with
    ``missing_ok=False`` any such gap raises :class:`RunDirError` and nothing is written.
    """
    rd = RunDir(run_dir)
    context = collect(rd, validate(rd.root))
    if not missing_ok and context["missing"]:
        raise RunDirError(f"{rd.root}: report incomplete; missing " + "; ".join(context["missing"]))
    report = Report(jinja_env().get_template("report.html").render(**context), list(context["missing"]))
    report.save(out if out is not None else rd.report_html)
    return report


# --- reading ---------------------------------------------------------------------------------------

def optional_json(path: Path) -> dict | None:
    """A JSON object if the file exists, None if it does not; corrupt or non-object content raises."""
    if not path.is_file():
        return None
    value = read_json(path)
    if not isinstance(value, dict):
        raise RunDirError(f"{path}: expected a JSON object; delete it and rerun the step that writes it")
    return value


def load_data(rd: RunDir) -> dict:
    data = optional_json(rd.data_json)
    if data is None:
        raise RunDirError(f"{rd.root}: no data.json; the run directory is incomplete (rerun 'xferdiag finetune' or 'audit')")
    if not isinstance(data.get("classes"), list) or not data["classes"]:
        raise RunDirError(f"{rd.data_json}: 'classes' must be a non-empty list of class names")
    data["classes"] = [str(c) for c in data["classes"]]
    return data


def _history(path: Path) -> dict[str, np.ndarray]:
    rows = read_csv(path)
    if not rows:
        raise RunDirError(f"{path}: no epochs recorded")
    columns = {}
    for name in HISTORY_COLUMNS:
        if name in rows[0]:
            try:
                columns[name] = np.array([float(r[name]) if r[name] not in ("", None) else np.nan for r in rows])
            except ValueError as exc:
                raise RunDirError(f"{path}: column '{name}' is not numeric ({exc})") from None
    columns.setdefault("epoch", np.arange(1, len(rows) + 1, dtype=float))
    return columns


def _predictions(path: Path, n_classes: int) -> dict[str, np.ndarray]:
    arrays = read_npz(path)
    labels, preds = arrays.get("labels"), arrays.get("predictions")
    if labels is None or preds is None or labels.shape != preds.shape or labels.ndim != 1:
        raise RunDirError(f"{path}: needs 1-D 'labels' and 'predictions' of equal length")
    for name, values in (("labels", labels), ("predictions", preds)):
        if values.size and (values.min() < 0 or values.max() >= n_classes):
            raise RunDirError(f"{path}: '{name}' outside 0..{n_classes - 1} (data.json lists {n_classes} classes)")
    return {"labels": labels.astype(np.int64), "predictions": preds.astype(np.int64)}


def load_arms(rd: RunDir, n_classes: int) -> dict[str, dict]:
    """Every arm with at least one finished seed: metrics, and history/predictions where present."""
    arms = {}
    for arm in rd.arms():
        seeds = rd.seeds(arm)
        if not seeds:
            continue
        folders = {s: rd.seed_dir(arm, s) for s in seeds}
        arms[arm] = {
            "seeds": seeds,
            "metrics": {s: optional_json(p / "metrics.json") for s, p in folders.items()},
            "history": {s: _history(p / "history.csv") for s, p in folders.items() if (p / "history.csv").is_file()},
            "predictions": {s: _predictions(p / "predictions.npz", n_classes)
                            for s, p in folders.items() if (p / "predictions.npz").is_file()},
        }
    if not arms:
        raise RunDirError(f"{rd.root}: no finished arm (arms/<arm>/seed-<k>/metrics.json); run 'xferdiag finetune' first")
    return arms


def metric_of(metrics: dict | None, key: str = "accuracy") -> float | None:
    """A test-split metric from metrics.json, or None when absent or not a number."""
    return fmt.as_number(((metrics or {}).get("test") or {}).get(key))


def config_value(config: dict, key: str):
    """First value stored under ``key`` anywhere in the (possibly nested) config, else None.

    The config layout belongs to the trainer and may nest sections; the report only needs a few
    well-known fields and should not break when they move.
    """
    if not isinstance(config, dict):
        return None
    if key in config:
        return config[key]
    for value in config.values():
        found = config_value(value, key)
        if found is not None:
            return found
    return None


def model_name(config: dict) -> str | None:
    model = config_value(config, "model")
    if isinstance(model, dict):
        model = model.get("name") or model.get("arch") or json.dumps(model, sort_keys=True)
    return None if model is None else str(model)


# --- sections --------------------------------------------------------------------------------------

def _mean(values: list) -> float | None:
    """Mean of the numbers among ``values``; hand-written files may hold nulls or strings."""
    numbers = [x for x in map(fmt.as_number, values) if x is not None]
    return float(np.mean(numbers)) if numbers else None


def banner(verdict: dict | None, arms: dict[str, dict], rd: RunDir) -> dict:
    """The one-sentence answer at the top, and its colour; when an arm did not learn (verdict.json's
    warnings) the sentence says the gap is no evidence, in the "warning" colour."""
    means = {arm: _mean([metric_of(m) for m in a["metrics"].values()]) for arm, a in arms.items()}
    summary = [f"{arm}: {fmt.pct(v)} test accuracy ({fmt.seeds_phrase(len(arms[arm]['seeds']))})" for arm, v in means.items()]
    if verdict is None:
        if "scratch" not in arms:
            return {"kind": "none", "headline": "No scratch baseline was trained, so this report cannot say whether "
                                                "transfer helped.",
                    "details": summary + ["To add one, rerun 'xferdiag finetune' with the same settings and "
                                          "'--baseline scratch' (the default), then render the report again."]}
        return {"kind": "none", "headline": "Both arms are trained but the verdict has not been computed yet.",
                "details": summary + [f"Run 'xferdiag report {shlex.quote(str(rd.root))}' to compute it."]}
    kind = verdict.get("verdict") if verdict.get("verdict") in ("positive", "negative", "inconclusive") else "none"
    metric_key = verdict.get("metric", "accuracy")
    metric = {"accuracy": "test accuracy", "macro_f1": "test macro F1"}.get(metric_key, f"test {metric_key}")
    n = len(verdict.get("seeds") or verdict.get("per_seed") or [])
    stats = f"(95% CI {fmt.ci_points(verdict.get('ci95'))}, {n} seed{'s' if n != 1 else ''})"
    gap = fmt.points(verdict.get("gap"))
    dead_arms = did_not_learn_warnings(verdict)
    if dead_arms:  # the gap is no evidence: the headline itself says so, the details say how to fix it
        headline = _not_evidence(kind, f"{gap} points of {metric} {stats}", dead_arms)
        kind = "warning"
        details = [DID_NOT_LEARN[w["code"]].advice for w in dead_arms] + [str(w.get("message")) for w in dead_arms]
    else:
        headline = {
            "positive": f"Transfer helped: {gap} points of {metric} over training from scratch {stats}.",
            "negative": f"Transfer hurt: {gap} points of {metric} compared with training from scratch {stats}.",
            "inconclusive": f"Transfer cannot be told apart from training from scratch: {gap} points of {metric} {stats}.",
        }.get(kind, f"Verdict '{verdict.get('verdict')}': {gap} points of {metric} {stats}.")
        details = []
    budgets = _budgets_differ(verdict.get("budgets"))
    if budgets:
        details.append(budgets)
    if verdict.get("p_value") is not None:
        details.append(f"{fmt.p_is(verdict['p_value'])} ({verdict.get('method', 'test over seeds')}, "
                       f"α = {fmt.num(verdict.get('alpha'))})")
    f1 = verdict.get("macro_f1")
    if isinstance(f1, dict) and f1.get("gap") is not None:
        details.append(f"Macro F1 gap {fmt.points(f1['gap'])} points (95% CI {fmt.ci_points(f1.get('ci95'))})")
    if verdict.get("note"):
        details.append(str(verdict["note"]))
    return {"kind": kind, "headline": headline, "details": details + summary}


def _not_evidence(kind: str, gap: str, dead_arms: list[dict]) -> str:
    """The headline when an arm did not learn: the gap as it looks, then why it shows nothing."""
    looks = {"positive": f"Transfer looks better by {gap}", "negative": f"Transfer looks worse by {gap}"}.get(
        kind, f"Transfer and training from scratch differ by {gap}")
    failures = []
    for warning in dead_arms:
        evidence = warning.get("evidence") or {}
        flagged, seeds = len(evidence.get("seeds_flagged") or []), evidence.get("seeds")
        when = "never learned" if flagged == seeds else f"did not learn in {flagged} of {seeds} seeds"
        failures.append(f"{DID_NOT_LEARN[warning['code']].who} {when} ({fmt.pct(evidence.get('test_accuracy'))} test "
                        f"accuracy, chance {fmt.pct(evidence.get('test_chance'))})")
    claim = {"positive": "that transfer helped", "negative": "that transfer hurt"}.get(kind, "about transfer")
    return f"{looks}, but {' and '.join(failures)}, so this is not evidence {claim}."


def _budgets_differ(budgets: object) -> str | None:
    """A sentence naming each arm's epochs and learning rate, when the two arms had different ones."""
    if not isinstance(budgets, dict) or len(budgets) != 2 or not all(isinstance(b, dict) for b in budgets.values()):
        return None
    first, second = budgets.values()
    if first == second:
        return None
    return "Budgets differ: " + "; ".join(f"{arm} {fmt.num(b.get('epochs'))} epochs at learning rate {fmt.num(b.get('lr'))}"
                                          for arm, b in budgets.items()) + "."


def _flatten(config: object, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(config, dict) and config:
        return [row for k, v in config.items() for row in _flatten(v, f"{prefix}{k}.")]
    value = config if isinstance(config, str) else json.dumps(config)
    return [(prefix.rstrip("."), value)]


def _splits(splits: object) -> str:
    if not isinstance(splits, dict):
        return fmt.DASH
    return " · ".join(f"{k} {v}" for k, v in splits.items())


def _input_shape(inputs: dict, kind: object) -> str:
    if kind == "table":
        return f"table rows of {inputs.get('size', '?')} features" if inputs.get("channels") == 0 else "table rows (raw feature values)"
    if not inputs:
        return fmt.DASH
    channels, size = inputs.get("channels", "?"), inputs.get("size", "?")
    return f"{channels} channel{'' if channels == 1 else 's'}, {size} × {size} pixels"


def setup(run: dict, data: dict, arms: dict[str, dict]) -> dict:
    """'What was run': the few facts a reader needs, the full config, and the command to reproduce."""
    config = run.get("config") if isinstance(run.get("config"), dict) else {}
    splits = data.get("splits") or {}
    inputs = data.get("input") or {}
    classes = data["classes"]
    epochs_run = _mean([(m or {}).get("epochs_run") for a in arms.values() for m in a["metrics"].values()])
    seconds = {arm: _mean([(m or {}).get("train_seconds") for m in a["metrics"].values()]) for arm, a in arms.items()}
    budget = []
    if config_value(config, "epochs") is not None:
        budget.append(f"{config_value(config, 'epochs')} epochs configured")
    if epochs_run is not None:
        budget.append(f"{fmt.num(epochs_run)} epochs run on average")
    budget += [f"{arm} {fmt.seconds(s)} per seed" for arm, s in seconds.items() if s is not None]
    shots = data.get("shots")
    rows = [
        ("Model", model_name(config) or fmt.DASH),
        ("Strategy", str(config_value(config, "strategy") or fmt.DASH)),
        ("Data", f"{data.get('kind', '?')}; target {_splits(splits.get('target'))}"
                 + (f"; source {_splits(splits['source'])}" if splits.get("source") else "")),
        ("Target training size", "all available examples" if shots in (None, "all") else f"{shots} examples per class"),
        ("Input", _input_shape(inputs, data.get("kind"))),
        ("Classes", f"{len(classes)}: " + ", ".join(classes[:12]) + (" …" if len(classes) > 12 else "")),
        ("Seeds", "; ".join(f"{arm} {', '.join(map(str, a['seeds']))}" for arm, a in arms.items())),
        ("Budget", "; ".join(budget) or fmt.DASH),
    ]
    audit = run.get("audit")
    if isinstance(audit, dict):
        rows.insert(1, ("Fine-tuned elsewhere", f"the {audit.get('arm', 'transfer')} arm is the checkpoint "
                        f"{audit.get('checkpoint', '?')}, evaluated as is by 'xferdiag audit' (no training history)"))
    command = run.get("command")
    return {"rows": rows, "config": _flatten(config) if config else [],
            "command": shlex.join(map(str, command)) if isinstance(command, list) and command else None}


def seed_table(arms: dict[str, dict]) -> dict:
    """Per-seed test accuracy of every arm, the gap where both standard arms ran, and per-arm means."""
    seeds = sorted({s for a in arms.values() for s in a["seeds"]})
    paired = all(a in arms for a in STANDARD_ARMS)
    rows = []
    for s in seeds:
        values = {arm: metric_of(a["metrics"].get(s)) for arm, a in arms.items()}
        gap = values["transfer"] - values["scratch"] if paired and None not in (values["transfer"], values["scratch"]) else None
        rows.append({"seed": s, "values": values, "gap": gap})
    summary = []
    for arm, a in arms.items():
        metrics = [a["metrics"][s] for s in a["seeds"]]
        accs = [v for v in (metric_of(m) for m in metrics) if v is not None]
        summary.append({
            "arm": arm, "n": len(a["seeds"]), "accuracy": _mean(accs),
            "sd": float(np.std(accs, ddof=1)) if len(accs) > 1 else None,
            "macro_f1": _mean([metric_of(m, "macro_f1") for m in metrics]),
            "loss": _mean([metric_of(m, "loss") for m in metrics]),
            "epochs": _mean([(m or {}).get("epochs_run") for m in metrics]),
            "best_epoch": _mean([(m or {}).get("best_epoch") for m in metrics]),
            "seconds": _mean([(m or {}).get("train_seconds") for m in metrics]),
        })
    return {"arms": list(arms), "rows": rows, "paired": paired, "summary": summary}


def per_class(arms: dict[str, dict], classes: list[str]) -> dict | None:
    """Per-class accuracy and confusion matrices, pooling each arm's test predictions over its seeds."""
    with_preds = {arm: a for arm, a in arms.items() if a["predictions"]}
    if not with_preds:
        return None
    c = len(classes)
    matrices, accuracy, pooled_seeds = {}, {}, {}
    for arm, a in with_preds.items():
        labels = np.concatenate([p["labels"] for p in a["predictions"].values()])
        preds = np.concatenate([p["predictions"] for p in a["predictions"].values()])
        matrices[arm] = np.bincount(labels * c + preds, minlength=c * c).reshape(c, c)
        accuracy[arm] = np.diag(matrices[arm]) / np.maximum(matrices[arm].sum(1), 1)
        pooled_seeds[arm] = sorted(a["predictions"])
    support = next(iter(matrices.values())).sum(1) / len(next(iter(pooled_seeds.values())))
    paired = all(a in accuracy for a in STANDARD_ARMS)
    diff = accuracy["transfer"] - accuracy["scratch"] if paired else None
    order = np.argsort(-diff) if paired else np.argsort(accuracy[next(iter(accuracy))])
    if len(order) > MAX_CLASS_ROWS:
        order = np.concatenate([order[: MAX_CLASS_ROWS // 2], order[-MAX_CLASS_ROWS // 2:]])
    rows = [{"name": classes[k], "support": support[k], "values": {arm: accuracy[arm][k] for arm in accuracy},
             "diff": None if diff is None else diff[k]} for k in order]
    return {
        "arms": list(accuracy), "rows": rows, "paired": paired, "truncated": c > MAX_CLASS_ROWS,
        "pooled": "; ".join(f"{arm}: seed{'s' if len(s) > 1 else ''} {', '.join(map(str, s))}"
                            for arm, s in pooled_seeds.items()),
        "bars": plots.per_class_accuracy(classes, accuracy),
        "confusion": plots.confusion_matrices(classes, matrices),
    }


def _shift_rows(shift: dict) -> list[tuple[str, str, str]]:
    def part(key: str) -> dict:
        return shift.get(key) if isinstance(shift.get(key), dict) else {}

    mmd, pad, fr, c2st, ks, ls = (part(k) for k in ("mmd", "proxy_a_distance", "frechet", "c2st", "ks", "label_shift"))
    rows = []
    if mmd:
        rows.append(("MMD (kernel two-sample test)",
                     f"{fmt.num(mmd.get('statistic'))}, p {fmt.pval(mmd.get('p_value'))} "
                     f"({fmt.num(mmd.get('n_permutations'))} permutations)",
                     "p below 0.05: source and target feature distributions differ"))
    if pad:
        ci = " to ".join(fmt.num(v) for v in pad.get("ci95") or []) or fmt.DASH
        rows.append(("Proxy A-distance", f"{fmt.num(pad.get('value'))} (95% CI {ci})",
                     "0 = indistinguishable, 2 = perfectly separable; above 1 is a large shift"))
    if fr:
        rows.append(("Fréchet distance", fmt.num(fr.get("value")),
                     "distance between Gaussian fits of the two feature sets; 0 = identical, compare across runs"))
    if c2st:
        rows.append(("Classifier two-sample test", f"{fmt.pct(c2st.get('accuracy'))} accuracy, p {fmt.pval(c2st.get('p_value'))} "
                     f"({fmt.num(c2st.get('n_test'))} held-out examples)",
                     "a classifier telling source from target; 50% = it cannot"))
    if ks:
        rows.append(("Per-feature KS tests",
                     f"{fmt.pct(ks.get('fraction_shifted'))} of {fmt.num(ks.get('n_dimensions'))} features shifted",
                     f"Kolmogorov–Smirnov test per feature at α = {fmt.num(ks.get('alpha'))}"))
    if ls:
        rows.append(("Label shift", f"total variation {fmt.num(ls.get('total_variation'))}",
                     "difference in class proportions; 0 = same, 1 = disjoint"))
    return rows


def domain_shift(rd: RunDir, shift: dict, classes: list[str], hint: str) -> dict:
    """Shift numbers with their meaning, the analyzer's own sentences, and the embedding scatter."""
    embedding_meta = shift.get("embedding") if isinstance(shift.get("embedding"), dict) else {}
    path = rd.analysis / Path(str(embedding_meta.get("file") or "embedding.npz")).name
    embedding = None
    if path.is_file():
        arrays = read_npz(path)
        xy, domain = arrays.get("xy"), arrays.get("domain")
        if xy is None or domain is None or xy.ndim != 2 or xy.shape[1] != 2 or len(domain) != len(xy):
            raise RunDirError(f"{path}: needs 'xy' (n, 2) and 'domain' (n,); delete it and {hint}")
        labels = arrays.get("label")
        labels = labels if labels is not None and len(labels) == len(xy) else np.zeros(len(xy), dtype=np.int64)
        names = classes if labels.max(initial=0) < len(classes) else [str(k) for k in range(int(labels.max()) + 1)]
        method = fmt.display_name(embedding_meta.get("method", "2-D"))
        embedding = plots.embedding_scatter(xy, domain, labels.astype(np.int64), names, method)
    ls = shift.get("label_shift") if isinstance(shift.get("label_shift"), dict) else {}
    label_chart = None
    if ls.get("source") and ls.get("target") and len(ls["source"]) == len(ls["target"]):
        names = [classes[c] if isinstance(c, int) and 0 <= c < len(classes) else str(c) for c in ls.get("classes") or classes]
        if len(names) == len(ls["source"]):
            label_chart = plots.label_shift(names, ls["source"], ls["target"])
    return {
        "rows": _shift_rows(shift),
        "features": feature_shift(shift),
        "interpretation": [str(s) for s in shift.get("interpretation") or []],
        "caption": f"Features from layer '{shift.get('layer', '?')}' of the {shift.get('model', '?')} model; "
                   f"{fmt.num(shift.get('n_source'))} source and {fmt.num(shift.get('n_target'))} target examples.",
        "embedding": embedding, "embedding_method": fmt.display_name(embedding_meta.get("method", "")),
        "label_chart": label_chart,
    }


def feature_shift(shift: dict) -> dict | None:
    """Per input feature of a table (shift.json "per_feature"), most shifted (largest KS statistic) first."""
    features = [{"name": str(f.get("name")), "ks_statistic": fmt.as_number(f.get("ks_statistic")),
                 "p_value": f.get("p_value"), "p_adjusted": f.get("p_adjusted"), "smd": fmt.as_number(f.get("smd")),
                 "shifted": f.get("shifted") is True}
                for f in shift.get("per_feature") or [] if isinstance(f, dict)]
    features = sorted((f for f in features if f["ks_statistic"] is not None and f["smd"] is not None),
                      key=lambda f: -f["ks_statistic"])
    if not features:
        return None
    return {"rows": features[:MAX_FEATURE_ROWS], "n": len(features), "n_shifted": sum(f["shifted"] for f in features),
            "truncated": len(features) > MAX_FEATURE_ROWS, "chart": plots.feature_shift(features[:MAX_FEATURE_BARS])}


def transferability(t: dict) -> dict:
    scores = t.get("scores") if isinstance(t.get("scores"), dict) else {}
    reasons = t.get("not_applicable") if isinstance(t.get("not_applicable"), dict) else {}
    seconds = t.get("seconds") if isinstance(t.get("seconds"), dict) else {}
    names = list(SCORES) + [k for k in scores if k not in SCORES]
    rows = [{"name": SCORES.get(k, (k, ""))[0], "meaning": SCORES.get(k, (k, ""))[1], "value": scores.get(k),
             "reason": reasons.get(k), "seconds": seconds.get(k)} for k in names if k in scores or k in reasons]
    return {"rows": rows, "caption": f"Computed with the {t.get('model', '?')} model on the {t.get('split', '?')} "
                                     f"split ({fmt.num(t.get('n'))} examples)."}


def similarity(s: dict, strategy: object = None) -> dict | None:
    """CKA per layer, in words that know which layers could change at all: a frozen layer's CKA of 1
    holds by construction and says nothing about what fine-tuning reused."""
    layers = [layer for layer in s.get("layers") or [] if isinstance(layer, dict)]
    if not layers:
        return None
    strategy = s.get("strategy", strategy)
    frozen = {layer.get("name") for layer in layers if layer.get("weight_change") == 0}
    weighted = [layer for layer in layers if isinstance(layer.get("weight_change"), (int, float))]
    cka = [(layer.get("name", "?"), layer.get("cka_linear")) for layer in layers if layer.get("name") not in frozen]
    cka = [(n, v) for n, v in cka if isinstance(v, (int, float))]
    sentences = []
    if weighted and len(frozen) == len(weighted):
        how = f" (strategy '{strategy}')" if strategy in FROZEN_STRATEGIES else ""
        sentences.append(f"The backbone was frozen{how}: none of its {len(weighted)} layers changed, so their CKA of 1 "
                         "holds by construction; only the new head was trained.")
    elif cka:
        if frozen:
            sentences.append(f"{len(frozen)} of {len(weighted)} layers stayed frozen (weights unchanged); "
                             "the sentences below are about the layers that trained.")
        kept = [n for n, v in cka if v >= KEPT_CKA]
        lowest = min(cka, key=lambda nv: nv[1])
        if kept:
            sentences.append(f"{len(kept)} of {len(cka)} layers kept CKA ≥ {KEPT_CKA} ({', '.join(map(str, kept[:6]))}"
                             f"{' …' if len(kept) > 6 else ''}): their pretrained features were reused almost unchanged.")
        sentences.append(f"Layer '{lowest[0]}' changed most (CKA {fmt.num(lowest[1])}).")
    skipped = [f"{layer.get('name')}: {layer['skipped']}" for layer in layers if layer.get("skipped")]
    if skipped:
        sentences.append("Not compared: " + "; ".join(skipped) + ".")
    return {"chart": plots.layer_similarity(layers), "layers": layers, "sentences": sentences,
            "caption": f"Arm '{s.get('arm', 'transfer')}', seed {s.get('seed', '?')}, compared with the pretrained model."}


def _maps_for(arrays: dict[str, np.ndarray], key: str, n: int, path: Path) -> np.ndarray | None:
    maps = arrays.get(key)
    if maps is not None and (maps.ndim != 3 or len(maps) != n):
        raise RunDirError(f"{path}: '{key}' should be (N, H, W) with N = {n}; delete explanations/ and rerun 'xferdiag explain'")
    return maps


def explanations(rd: RunDir, index: dict, classes: list[str]) -> dict:
    """The gallery: each example's image, then every method's map for every arm, with the checks."""
    if index.get("kind") == "tabular":
        return tabular_explanations(rd, index, classes)
    path = rd.explanations / "maps.npz"
    arrays = read_npz(path)
    examples = [e for e in index.get("examples") or [] if isinstance(e, dict)]
    images = arrays.get("images")
    if images is None or images.ndim != 4 or len(images) != len(examples):
        raise RunDirError(f"{path}: 'images' should be (N, C, H, W) with N = {len(examples)} examples from index.json; "
                          "delete explanations/ and rerun 'xferdiag explain'")
    methods = [str(m) for m in index.get("methods") or []]
    arms = [str(a) for a in index.get("arms") or []]
    sanity = index.get("sanity") if isinstance(index.get("sanity"), dict) else {}
    agreement = index.get("agreement") if isinstance(index.get("agreement"), dict) else {}
    maps = {(m, a): _maps_for(arrays, f"{m}__{a}", len(examples), path) for m in methods for a in arms}

    def name(k: object) -> str:
        return classes[k] if isinstance(k, int) and 0 <= k < len(classes) else str(k)

    def per_example(method: str, key: str, i: int):
        values = (agreement.get(method) or {}).get(key) or []
        return values[i] if i < len(values) else None

    gallery = []
    for i, ex in enumerate(examples[:MAX_GALLERY]):
        pred, correct = ex.get("pred") or {}, ex.get("correct") or {}
        groups = []
        for m in methods:
            cells = [{"arm": a, "pred": name(pred.get(a)), "correct": correct.get(a),
                      "uri": None if maps[m, a] is None else plots.overlay_tile(images[i], maps[m, a][i])} for a in arms]
            groups.append({"method": m, "cells": cells, "spearman": per_example(m, "spearman", i),
                           "topk": per_example(m, "topk_overlap", i)})
        gallery.append({"index": ex.get("index"), "label": name(ex.get("label")), "image": plots.image_tile(images[i]),
                        "wrong": any(v is False for v in correct.values()), "groups": groups})
    faith = index.get("faithfulness") if isinstance(index.get("faithfulness"), dict) else {}
    params = index.get("params") if isinstance(index.get("params"), dict) else {}
    topk = (params.get("agreement") or {}).get("topk")
    additivity = index.get("shap_additivity_gap") if isinstance(index.get("shap_additivity_gap"), dict) else {}
    return {
        "tabular": False, "methods": methods, "arms": arms, "seed": index.get("seed"), "gallery": gallery,
        "names": {m: fmt.display_name(m) for m in methods},
        "truncated": len(examples) > MAX_GALLERY, "n_examples": len(examples),
        "flagged": {m for m, c in sanity.items() if isinstance(c, dict) and c.get("flagged")},
        "sanity": [{"method": fmt.display_name(m), "similarity": c.get("similarity_after_randomisation"),
                    "flagged": bool(c.get("flagged"))} for m, c in sanity.items() if isinstance(c, dict)],
        "agreement": _agreement_means(agreement),
        "faithfulness": [{"method": fmt.display_name(m), "arm": a, "deletion": (v or {}).get("deletion_auc"),
                          "insertion": (v or {}).get("insertion_auc")}
                         for m, per_arm in faith.items() if isinstance(per_arm, dict) for a, v in per_arm.items()],
        "additivity": {a: max((abs(v) for v in gaps if isinstance(v, (int, float))), default=None)
                       for a, gaps in additivity.items() if isinstance(gaps, list)},
        "gradient": plots.heatmap_gradient(),
        "target": "each arm's own prediction" if params.get("target") == "prediction" else "the true class",
        "topk": fmt.pct(topk, 0) if isinstance(topk, (int, float)) else "k",
    }


def _with_agreement_caveat(section: dict, verdict: dict | None) -> dict:
    """Agreement between a model that learned and one that did not measures nothing about transfer: say so."""
    dead = [w.get("arm") for w in (verdict or {}).get("warnings") or []
            if isinstance(w, dict) and str(w.get("code", "")).endswith("did-not-learn")]
    compared = [a for a in section.get("arms", [])[:2] if a in dead]
    section["agreement_caveat"] = (f"Not meaningful here: the {' and '.join(compared)} model{'s' if len(compared) > 1 else ''} "
                                   "did not learn (see the verdict), so agreement with it says nothing about what "
                                   "transfer changed.") if compared and section.get("agreement") else None
    return section


def _agreement_means(agreement: dict) -> list[dict]:
    return [{"method": fmt.display_name(m),
             "spearman": _mean([v for v in (a or {}).get("spearman") or [] if isinstance(v, (int, float))]),
             "topk": _mean([v for v in (a or {}).get("topk_overlap") or [] if isinstance(v, (int, float))])}
            for m, a in agreement.items()]


def tabular_explanations(rd: RunDir, index: dict, classes: list[str]) -> dict:
    """Tables: the mean |attribution| per feature for every method (arms side by side), and per example
    each method's and arm's strongest features as signed bars, labelled with the example's values."""
    path = rd.explanations / "maps.npz"
    arrays = read_npz(path)
    examples = [e for e in index.get("examples") or [] if isinstance(e, dict)]
    names = [str(n) for n in index.get("feature_names") or []]
    rows = arrays.get("rows")
    if rows is None or rows.ndim != 2 or rows.shape != (len(examples), len(names)):
        raise RunDirError(f"{path}: 'rows' should be (N, F) with N = {len(examples)} examples and F = {len(names)} "
                          "feature names from index.json; delete explanations/ and rerun 'xferdiag explain'")
    methods = [str(m) for m in index.get("methods") or []]
    arms = [str(a) for a in index.get("arms") or []]
    values = {(m, a): arrays[f"{m}__{a}"] for m in methods for a in arms if f"{m}__{a}" in arrays}
    for key, v in values.items():
        if v.shape != rows.shape:
            raise RunDirError(f"{path}: '{key[0]}__{key[1]}' should be {rows.shape} like 'rows'; delete explanations/ and rerun 'xferdiag explain'")

    def name(k: object) -> str:
        return classes[k] if isinstance(k, int) and 0 <= k < len(classes) else str(k)

    summaries = []
    for m in methods:
        importance = {}
        for a in arms:
            if (m, a) in values:
                mean_abs = np.abs(values[m, a]).mean(0)
                importance[a] = [(names[j], float(mean_abs[j])) for j in np.argsort(-mean_abs, kind="stable")[:SUMMARY_FEATURES]]
        if importance:
            axis = f"mean |{fmt.display_name(m)} value| over {len(examples)} test examples"
            summaries.append({"method": fmt.display_name(m), "chart": plots.feature_importance(importance, axis)})
    gallery = []
    for i, ex in enumerate(examples[:MAX_GALLERY]):
        pred, correct = ex.get("pred") or {}, ex.get("correct") or {}
        grid = []
        for m in methods:
            row = []
            for a in (a for a in arms if (m, a) in values):
                v = values[m, a][i]
                top = np.argsort(-np.abs(v), kind="stable")[:TOP_FEATURES]
                mark = {True: " ✓", False: " ✗"}.get(correct.get(a), "")
                row.append({"title": f"{fmt.display_name(m)} · {a}: predicts {name(pred.get(a))}{mark}",
                            "names": [f"{names[j]} = {fmt.num(float(rows[i, j]))}" for j in top], "values": v[top]})
            grid += [row] if row else []
        gallery.append({"index": ex.get("index"), "label": name(ex.get("label")),
                        "wrong": any(v is False for v in correct.values()),
                        "chart": plots.attribution_bars(grid) if grid else None})
    agreement = index.get("agreement") if isinstance(index.get("agreement"), dict) else {}
    return {"tabular": True, "methods": [fmt.display_name(m) for m in methods], "arms": arms, "seed": index.get("seed"),
            "n_features": len(names), "summaries": summaries, "gallery": gallery, "agreement": _agreement_means(agreement),
            "n_examples": len(examples), "truncated": len(examples) > MAX_GALLERY, "top": TOP_FEATURES}


def shots_section(shots: dict) -> dict | None:
    points = [p for p in shots.get("points") or []
              if isinstance(p, dict) and isinstance(p.get("n_train"), (int, float)) and isinstance(p.get("gap"), (int, float))]
    if not points:
        return None
    return {"chart": plots.shots_curve(points), "points": sorted(points, key=lambda p: p["n_train"])}


# --- assembling ------------------------------------------------------------------------------------

def collect(rd: RunDir, run: dict) -> dict:
    """Everything the template needs, plus the list of what is missing and how to add it."""
    data = load_data(rd)
    classes = data["classes"]
    arms = load_arms(rd, len(classes))
    where = shlex.quote(str(rd.root))
    analyze, explain = f"run 'xferdiag analyze {where}'", f"run 'xferdiag explain {where}'"
    missing: list[str] = []

    verdict = optional_json(rd.verdict_json)
    if verdict is None:
        missing.append("transfer-vs-scratch verdict (" + (
            "train the scratch baseline with 'xferdiag finetune'" if "scratch" not in arms
            else f"run 'xferdiag report {where}' to compute it") + ")")
    if not any(a["history"] for a in arms.values()):
        missing.append("learning curves (no arms/<arm>/seed-<k>/history.csv)")
    classes_section = per_class(arms, classes)
    if classes_section is None:
        missing.append("per-class accuracy and confusion matrices (no arms/<arm>/seed-<k>/predictions.npz)")

    shift = optional_json(rd.analysis / "shift.json")
    if shift is None:
        no_source = not config_value(run.get("config") or {}, "source_data")
        missing.append("domain shift (the run names no source data: give --source-data to 'xferdiag finetune' or 'audit')"
                       if no_source else f"domain shift ({analyze})")
    trans = optional_json(rd.analysis / "transferability.json")
    if trans is None:
        missing.append(f"transferability scores ({analyze})")
    sim = optional_json(rd.analysis / "similarity.json")
    if sim is None:
        missing.append(f"layer-wise similarity and weight change ({analyze})")
    index = optional_json(rd.explanations / "index.json")
    if index is None or not (rd.explanations / "maps.npz").is_file():
        missing.append(f"explanations: Grad-CAM, SHAP, LIME ({explain})")
        index = None
    shots = optional_json(rd.root / "shots.json")

    shift_section = domain_shift(rd, shift, classes, analyze) if shift else None
    if shift_section and shift_section["embedding"] is None:
        missing.append(f"source-vs-target embedding ({analyze})")

    config = run.get("config") if isinstance(run.get("config"), dict) else {}
    strategy = config_value(config, "strategy")
    n_test = ((data.get("splits") or {}).get("target") or {}).get("test")
    seconds = {arm: _mean([(m or {}).get("train_seconds") for m in a["metrics"].values()]) for arm, a in arms.items()}
    facts = Facts(arms=list(arms), verdict=verdict, strategy=None if strategy is None else str(strategy),
                  shift=shift, similarity=sim, sanity=(index or {}).get("sanity"), shots=shots,
                  n_test=n_test if isinstance(n_test, int) else None,
                  train_seconds={arm: s for arm, s in seconds.items() if s is not None})
    histories = {arm: a["history"] for arm, a in arms.items() if a["history"]}
    env = run.get("environment") if isinstance(run.get("environment"), dict) else {}
    return {
        "title": rd.root.resolve().name, "run": run,
        "banner": banner(verdict, arms, rd),
        "setup": setup(run, data, arms),
        "recommendations": recommend(facts),
        "curves": plots.learning_curves(histories) if histories else None,
        "seeds": seed_table(arms),
        "classes": classes_section,
        "shift": shift_section,
        "transferability": transferability(trans) if trans else None,
        "similarity": similarity(sim, strategy) if sim else None,
        "explanations": _with_agreement_caveat(explanations(rd, index, classes), verdict) if index else None,
        "shots": shots_section(shots) if shots else None,
        "environment": [(str(k), v if isinstance(v, str) else json.dumps(v)) for k, v in env.items()],
        "missing": missing,
        **stamp(),
    }
