"""``rank --then-finetune K``: did the ranking hold? Fine-tune the top K pretrained candidates, each beside its
own scratch arm (``finetune``, unchanged: a fair baseline is the same architecture from random weights), and
set the order rank predicted against the one measured.

The measured order is the transfer arm's test score (mean over seeds), the question rank answers being which
model to start from; each run's verdict against its own scratch arm is kept beside it. The comparison report
(:mod:`xferdiag.report.compare`) shows both orders with Kendall's tau per score, the scores being those rank
computed; the tau's p-value is given from five candidates up (with fewer it cannot be significant).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .. import rundir
from ..config import RANK_FIELDS, RunConfig
from ..errors import ConfigError
from ..report.compare import compare_runs, render_compare
from ..rundir.layout import RANK_COMPARE_HTML, RANK_RUNS, RANKING_JSON
from ..tasks.registry import task_for
from .finetune import finetune
from .rank import SCORES, parse_candidate, rank_models, rank_scores, table_lines

#: What the predicted order is read against: the transfer arm's mean test score (compare's column).
MEASURE = "transfer_mean"


@dataclass(frozen=True)
class Ranking:
    """What ``rank`` found: the candidates' rows, best first (ranking.json's ``candidates``), and after
    ``then_finetune`` the summary of the fine-tuned runs (ranking.json's ``then_finetune``)."""

    rows: list[dict]
    out: Path
    then_finetune: dict | None = None
    scores: tuple[str, ...] = SCORES

    def table(self) -> list[str]:
        """The terminal's table of scores (the task's score columns)."""
        return table_lines(self.rows, self.scores)

    def summary(self) -> list[str]:
        """The terminal's lines on the fine-tuned runs (none without ``then_finetune``)."""
        return summary_lines(self.then_finetune, self.out) if self.then_finetune else []


def rank_and_finetune(config: RunConfig, candidates: list[str], out: str | Path, *, then_finetune: int | None = None,
                      include_random: bool = False, quiet: bool = False, command: list[str] | None = None) -> Ranking:
    """Score ``candidates`` on ``config.data`` with ``config``'s split and input settings; with ``then_finetune``,
    fine-tune the top candidates with ``config`` (its runs folder checked empty before anything is scored)."""
    if then_finetune is not None:
        runs_folder(out)
    rows = rank_models(config.data, candidates, out, shots=config.shots, val_fraction=config.val_fraction,
                       test_fraction=config.test_fraction, split_seed=config.split_seed, include_random=include_random,
                       quiet=quiet, model=config.model, **{name: getattr(config, name) for name in RANK_FIELDS})
    scores = rank_scores(config)
    summary = None if then_finetune is None else finetune_top(rows, then_finetune, config, out, quiet=quiet, command=command)
    return Ranking(rows, Path(out), summary, scores)


def runs_folder(out: str | Path) -> Path:
    """Where the fine-tuned candidates' run directories go; checked empty before anything is scored or trained."""
    folder = Path(out) / RANK_RUNS
    if folder.exists() and any(folder.iterdir()):
        raise ConfigError(f"then_finetune: {folder} already holds runs; choose another --out, or continue each run "
                          "with 'xferdiag finetune --resume RUN_DIR'")
    return folder


def _slug(candidate: str) -> str:
    """A folder name for a candidate spec (paths and options flattened)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", candidate).strip("_")[:60] or "candidate"


def finetune_top(rows: list[dict], k: int, config: RunConfig, out: str | Path, *, quiet: bool = False,
                 command: list[str] | None = None) -> dict:
    """Fine-tune the top ``k`` ranked pretrained candidates of ``rows`` (rank's order) with ``config``, write the
    comparison beside ranking.json and add its summary to ranking.json (``then_finetune``); return the summary."""
    if k < 1:
        raise ConfigError(f"then_finetune: give the number of top candidates to fine-tune (>= 1), got {k}")
    top = [r for r in rows if r["pretrained"] and r["rank"] is not None][:k]
    if not top:
        raise ConfigError("then_finetune: no ranked candidate has pretrained weights to fine-tune")
    root, folders = runs_folder(out), []
    for row in top:
        folder = root / f"{row['rank']}-{_slug(row['candidate'])}"
        finetune(candidate_config(config, row["candidate"]), folder, quiet=quiet, command=command)
        folders.append(folder)
    scores = {str(f.resolve()): {s: row.get(s) for s in SCORES} for f, row in zip(folders, top)}
    comparison = compare_runs(folders, scores=scores, measure=MEASURE)
    render_compare(folders, Path(out) / RANK_COMPARE_HTML, comparison)
    summary = _summary(top, folders, comparison, k)
    ranking = rundir.read_json(Path(out) / RANKING_JSON)
    rundir.write_json(Path(out) / RANKING_JSON, {**ranking, "then_finetune": summary})
    return summary


def candidate_config(config: RunConfig, candidate: str) -> RunConfig:
    """The finetune settings of one candidate beside its own scratch arm: the task's ``candidate_config`` hook where it
    has one (detection: the candidate is the backbone under ``config.model``), else the candidate as the model."""
    arch, checkpoint = parse_candidate(candidate)
    configure = getattr(task_for(config), "candidate_config", None)
    if configure is not None:
        return configure(config, candidate, arch, checkpoint)
    return config.replace(model=arch, pretrained_checkpoint=checkpoint, baseline="scratch")


def _summary(top: list[dict], folders: list[Path], comparison: dict, k: int) -> dict:
    """ranking.json's ``then_finetune``: each run's candidate, predicted rank and measured scores; both orders; the taus."""
    runs = [{"candidate": row["candidate"], "rank": row["rank"], "run_dir": str(folder),
             **{key: measured[key] for key in ("transfer_mean", "scratch_mean", "gap", "verdict")}}
            for row, folder, measured in zip(top, folders, comparison["runs"])]
    measured = sorted((r for r in runs if r[MEASURE] is not None), key=lambda r: -r[MEASURE])
    return {"k": k, "fine_tuned": len(runs), "measure": MEASURE, "runs": runs,
            "predicted_order": [r["candidate"] for r in runs], "measured_order": [r["candidate"] for r in measured],
            "kendall": [{key: t[key] for key in ("score", "n", "tau", "p_value", "note")} for t in comparison["kendall"]],
            "compare": RANK_COMPARE_HTML}


def summary_lines(summary: dict, out: str | Path) -> list[str]:
    """What the terminal says after the runs: both orders, LogME's tau (p-value or why none), where the runs are."""
    logme = next(t for t in summary["kendall"] if t["score"] == "logme")
    tau = "n/a" if logme["tau"] is None else f"{logme['tau']:+.2f}"
    p = f"p = {logme['p_value']:.3g}" if logme["p_value"] is not None else logme["note"]
    lines = [f"fine-tuned the top {summary['fine_tuned']} candidates, each beside its own scratch arm: {Path(out) / RANK_RUNS}"]
    if summary["fine_tuned"] < summary["k"]:
        lines.append(f"(--then-finetune {summary['k']}: only {summary['fine_tuned']} ranked candidates have pretrained weights)")
    lines += [f"predicted order (LogME):              {', '.join(summary['predicted_order'])}",
              f"measured order (transfer test score): {', '.join(summary['measured_order'])}",
              f"Kendall's tau, LogME vs measured: {tau} ({p})",
              f"comparison: {Path(out) / RANK_COMPARE_HTML} (+ .csv, .json)"]
    return lines
