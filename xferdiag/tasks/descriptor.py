"""What a task supports and how the report speaks of its results: a torch-free description each task plug-in
gives, looked up by the task a run records (runs made before tasks were recorded are classification runs).
The report, the run directory's status and the CLI read it without loading any model."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points

from ..errors import ConfigError
from .classification.descriptor import DESCRIPTOR as CLASSIFICATION
from .detection.descriptor import DESCRIPTOR as DETECTION

STAGES = ("finetune", "audit", "verdict", "analyze", "explain", "report", "compare", "rank", "sweep")
"""The commands a task may support ("sweep": several transfer arms in one run, xferdiag.sweeps); every task supports
finetune, verdict and report (its results, judged and shown)."""
REQUIRED = ("finetune", "verdict", "report")


@dataclass(frozen=True)
class TaskDescriptor:
    """``metric``: the headline test metric in metrics.json; ``label``: how sentences name it; ``columns``:
    the per-arm table's other test metrics as (key, header, format "pct" or "num"); ``curves``: the
    learning-curve panels as (history column, title, scale), the training loss dashed on the panel of
    ``loss_panel``; ``evidence``: a did-not-learn warning's evidence keys (the arm's score, its baseline)
    and how the banner names them; ``per_class``: the per-class section made from per-example predictions, None
    where the task has none yet; ``stages``: the commands that work on its runs ("sweep": several transfer arms
    in one run; a stage it lacks ends in one line, and the report says its sections are not available); ``records``:
    the names of the test records a finished seed keeps (what its evaluation's ``record()`` returns;
    :mod:`xferdiag.rundir` stores each by its name); ``sections``: the task's own report sections by name
    (:mod:`xferdiag.report.sections.task` builds them; the run page shows those a run has the files for);
    ``analyses``: the files ``analyze`` always writes for its runs, by stem (``shift``, ``transferability``,
    ``similarity``; a classification run's shift.json needs source data): the analysis is done when they are there,
    and the report offers ``analyze`` only for those; ``scores``: the transferability scores (transferability.json's
    names, ``rank``'s columns) ``compare`` sets beside the measured outcome; ``explanations``: the task section (one of
    ``sections``) that shows explanations/ where the task explains its runs itself (its ``explain``), None where the
    data's modality does."""

    metric: str
    label: str
    header: str
    columns: tuple[tuple[str, str, str], ...]
    curves: tuple[tuple[str, str, float], ...]
    curves_lede: str
    loss_panel: str
    evidence: tuple[str, str, str, str]
    per_class: str | None
    stages: tuple[str, ...]
    records: tuple[str, ...]
    sections: tuple[str, ...] = ()
    analyses: tuple[str, ...] = ("transferability", "similarity")
    explanations: str | None = None
    scores: tuple[str, ...] = ("logme", "leep", "nce", "h_score")

    def __post_init__(self):
        """A plug-in's stages are xferdiag's commands, the ones every run needs included, and its seeds keep a test
        record for the verdict to judge (a mistake fails when the plug-in loads)."""
        if not set(REQUIRED) <= set(self.stages) <= set(STAGES):
            raise ValueError(f"stages {self.stages}: a subset of {', '.join(STAGES)} with at least {', '.join(REQUIRED)}")
        if not self.records or not all(isinstance(name, str) and name.isidentifier() for name in self.records):
            raise ValueError(f"records {self.records}: the names of the test records a seed keeps (plain identifiers)")

    def supports(self, stage: str) -> bool:
        return stage in self.stages

    def not_yet(self, name: str) -> str:
        """Why a stage this task lacks cannot run, in the words every such message uses."""
        return f"not available for {name} runs yet"


DESCRIPTORS = {"classification": TaskDescriptor(**CLASSIFICATION), "detection": TaskDescriptor(**DETECTION)}
"""Every known task's descriptor by name; :func:`xferdiag.tasks.registry.register_task` adds a plug-in's."""

ENTRY_POINTS = "xferdiag.tasks"
"""The entry-point group in which an installed package declares a task plug-in: ``name = "package.module:TaskClass"``."""
PLUGINS: dict = {}
"""The task plug-ins installed packages declare, by name, once :func:`discover` has loaded them."""
_looked: list[bool] = []


def discover() -> dict:
    """Load the task plug-ins of :data:`ENTRY_POINTS` (once per process), so that every xferdiag process, the command
    line's included, knows them; their descriptors join :data:`DESCRIPTORS`. Only a name no built-in task has loads
    them, so a built-in run's report still imports no torch."""
    if not _looked:
        _looked.append(True)
        for point in entry_points(group=ENTRY_POINTS):
            try:
                loaded = point.load()
                task = loaded() if isinstance(loaded, type) else loaded
                PLUGINS[task.name] = task
            except Exception as exc:  # an installed package's broken plug-in: one line that names it
                raise ConfigError(f"task plug-in {point.name!r} ({point.value}) does not load: {exc}") from None
            DESCRIPTORS.setdefault(task.name, task.descriptor)
    return PLUGINS


def describe_task(task: str | None) -> TaskDescriptor:
    """The descriptor of the task a run records (None: a run made before tasks were recorded, a classification run).
    An unknown name ends in one line rather than reading the run as classification: a plug-in's runs are known where
    :func:`xferdiag.tasks.registry.register_task` added it or a package declares it (:func:`discover`), and a newer
    xferdiag's tasks not at all."""
    if task is None:
        return DESCRIPTORS["classification"]
    if task not in DESCRIPTORS:
        discover()
    if task not in DESCRIPTORS:
        raise ConfigError(f"task: the run's task {task!r} is not known here (known: {', '.join(DESCRIPTORS)}); a plug-in "
                          f"task is known where register_task added it or a package declares it ({ENTRY_POINTS} entry "
                          "points), a newer xferdiag's task by that version")
    return DESCRIPTORS[task]
