"""Render one run directory into one self-contained, offline HTML report.

Everything is read and drawn in memory first and the file is written atomically at the end, so a
failure never leaves a half-written report or touches an existing one. Each optional file of the
run directory feeds one section (``sections/``); a missing file becomes a line under "Not in this
report" instead of an error, while a corrupt one raises :class:`RunDirError` naming it. Jinja2
autoescapes every value, so class names, paths and config values from users reach the page only as text.
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

from .._version import __version__
from ..errors import RunDirError
from ..modalities.descriptor import describe_modality
from ..rundir import RunDir, RunDocuments, layout, read_data, validate, write_text
from ..rundir.status import lacking_stage
from ..sweeps import sweep_of
from ..tasks.descriptor import TaskDescriptor, describe_task
from . import fmt, plots
from .recommend import Facts, recommend
from .sections.banner import banner
from .sections.catchup import catch_up_section
from .sections.common import Arm, config_value, load_arms, mean, run_config
from .sections.explanations import with_agreement_caveat
from .sections.image_explanations import image_explanations
from .sections.per_class import per_class
from .sections.seeds import seed_table
from .sections.setup import setup
from .sections.shift import domain_shift
from .sections.shots import shots_section
from .sections.similarity import similarity
from .sections.sweep import sweep_section
from .sections.table_explanations import table_explanations
from .sections.task import EXPLANATION_WORDS, task_missing, task_sections
from .sections.text_explanations import text_explanations
from .sections.transferability import transferability

TEMPLATES = Path(__file__).parent / "templates"
EXPLANATION_SECTIONS = {build.__name__: build for build in (image_explanations, table_explanations, text_explanations)}
"""The explanation section of each modality, by the name its descriptor gives (``section``)."""


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
    report = Report(jinja_env().get_template("run.html").render(**context), list(context["missing"]))
    report.save(out if out is not None else rd.report_html)
    return report


def collect(rd: RunDir, run: dict) -> dict:
    """Everything the template needs, plus the list of what is missing and how to add it."""
    data = read_data(rd)
    classes = data["classes"]
    arms = load_arms(rd, len(classes))
    files = RunDocuments.read(rd)
    classes_section = per_class(arms, classes)
    shift_section = domain_shift(rd, files.shift, classes, _run(rd, "analyze")) if files.shift else None
    strategy = config_value(run_config(run), "strategy")
    histories = {name: arm["history"] for name, arm in arms.items() if arm["history"]}
    terms = describe_task(config_value(run_config(run), "task"))
    env = run.get("environment") or {}
    task = task_sections(terms, rd, data, arms, files.verdict)
    missing = _missing(rd, run, arms, files, classes_section is None, shift_section, terms, data["kind"])
    return {
        "title": rd.root.resolve().name, "run": run,
        "banner": banner(files.verdict, arms, rd, terms),
        "sweep": sweep_section(files.verdict, arms, terms),
        "catch_up": catch_up_section(files.verdict, arms, terms),
        "terms": terms,
        "setup": setup(run, data, arms),
        "recommendations": recommend(_facts(data, arms, files, strategy)),
        "curves": plots.learning_curves(histories, terms.curves, terms.loss_panel) if histories else None,
        "seeds": seed_table(arms, terms),
        "classes": classes_section,
        "task": task,
        "shift": shift_section,
        "transferability": transferability(files.transferability) if files.transferability else None,
        "similarity": similarity(files.similarity, strategy) if files.similarity else None,
        "explanations": None if terms.explanations else _explanations(rd, files, classes),
        "shots": shots_section(files.shots) if files.shots else None,
        "environment": [(str(k), v if isinstance(v, str) else json.dumps(v)) for k, v in env.items()],
        "missing": missing + task_missing(task, files.verdict, _run(rd, "report")),
        **stamp(),
    }


def _explanations(rd: RunDir, files: RunDocuments, classes: list[str]) -> dict | None:
    """The explanation section of the kind index.json records, as its descriptor names it (none for a kind without one):
    its data, and the template that shows them (``templates/explanations/<section>.html``, included by run.html); a task
    that explains its runs itself shows them in its own section instead (``TaskDescriptor.explanations``)."""
    section = describe_modality(files.index["kind"]).section if files.index else None
    if section is None:
        return None
    build = EXPLANATION_SECTIONS[section]
    return {**with_agreement_caveat(build(rd, files.index, classes), files.verdict), "template": f"explanations/{section}.html"}


def _facts(data: dict, arms: dict[str, Arm], files: RunDocuments, strategy: object) -> Facts:
    """What the recommendation rules look at."""
    n_test = ((data.get("splits") or {}).get("target") or {}).get("test")
    seconds = {name: mean([m.get("train_seconds") for m in arm["metrics"].values()]) for name, arm in arms.items()}
    return Facts(arms=list(arms), verdict=files.verdict, strategy=None if strategy is None else str(strategy),
                 shift=files.shift, similarity=files.similarity, sanity=(files.index or {}).get("sanity"),
                 shots=files.shots, n_test=n_test if isinstance(n_test, int) else None,
                 train_seconds={name: s for name, s in seconds.items() if s is not None})


def _missing(rd: RunDir, run: dict, arms: dict[str, Arm], files: RunDocuments, no_predictions: bool,
             shift_section: dict | None, terms: TaskDescriptor, kind: str) -> list[str]:
    """One line per section the report lacks, saying how to add it, in the order the sections appear."""
    analyze, explain = _run(rd, "analyze"), _run(rd, "explain")
    task = config_value(run_config(run), "task")
    lacking = {stage: lacking_stage(terms, task, describe_modality(kind), stage) for stage in ("analyze", "explain")}
    analyze, explain = lacking["analyze"] or analyze, lacking["explain"] or explain
    if sweep_of(run_config(run)):
        analyze = explain = f"not available for a {sweep_of(run_config(run)).setting} sweep yet"
    missing = []
    if files.verdict is None:
        missing.append("transfer-vs-scratch verdict (" + (
            "train the scratch baseline with 'xferdiag finetune'" if "scratch" not in arms
            else f"{_run(rd, 'report')} to compute it") + ")")
    if not any(arm["history"] for arm in arms.values()):
        missing.append(f"learning curves (no {layout.SEED_PATTERN}/{layout.HISTORY_CSV})")
    if no_predictions and terms.per_class:
        missing.append(f"{terms.per_class} (no {layout.SEED_PATTERN}/{layout.PREDICTIONS_NPZ})")
    if files.shift is None and lacking["analyze"]:
        missing.append(f"domain shift ({analyze})")
    elif files.shift is None:
        no_source = not config_value(run.get("config") or {}, "source_data")
        missing.append("domain shift (the run names no source data: give --source-data to 'xferdiag finetune' or 'audit')"
                       if no_source else f"domain shift ({analyze})")
    if files.transferability is None:
        missing.append(f"transferability scores ({analyze if 'transferability' in terms.analyses else terms.not_yet(task)})")
    if files.similarity is None:
        missing.append(f"layer-wise similarity and weight change ({analyze if 'similarity' in terms.analyses else terms.not_yet(task)})")
    if files.index is None:
        words = EXPLANATION_WORDS.get(terms.explanations) or describe_modality(kind).methods_words
        missing.append(f"explanations: {words} ({explain})")
    if shift_section and shift_section["embedding"] is None and files.shift["embedding"]:  # written, then lost (a task may write none)
        missing.append(f"source-vs-target embedding ({analyze})")
    return missing



def _run(rd: RunDir, command: str) -> str:
    """How the page tells the reader to add what is missing: "run 'xferdiag COMMAND RUN_DIR'"."""
    return f"run 'xferdiag {command} {shlex.quote(str(rd.root))}'"
