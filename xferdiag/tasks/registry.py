"""The registered tasks (classification, detection, any plug-in added by :func:`register_task` and any an installed
package declares in the ``xferdiag.tasks`` entry-point group) and which one a run is.

A run's task is named by ``--task`` or follows from its data: each plug-in says whether data are its
own (:func:`task_for` asks them in order, classification last, as it takes anything else).
"""

from __future__ import annotations

from ..config import RunConfig
from ..errors import ConfigError
from .base import Task
from .classification.task import ClassificationTask
from .descriptor import DESCRIPTORS, discover
from .detection.task import DetectionTask

TASKS: dict[str, Task] = {"detection": DetectionTask(), "classification": ClassificationTask()}
"""Every registered task by name, asked in this order whether data are theirs."""


def register_task(task: Task) -> Task:
    """Add a task plug-in: the commands then train, judge and report its runs, and the report reads its descriptor.
    It is asked before the built-in tasks whether data are its own (classification takes anything, so it stays
    last); registering a name again replaces that task."""
    others = {name: known for name, known in TASKS.items() if name != task.name}
    TASKS.clear()
    TASKS.update({task.name: task, **others})
    DESCRIPTORS[task.name] = task.descriptor
    return task


def _with_plugins() -> None:
    """The task plug-ins installed packages declare join the registry (:func:`.descriptor.discover`); a task
    registered in this process under the same name stays."""
    for name, task in discover().items():
        if name not in TASKS:
            register_task(task)


def task_for(config: RunConfig) -> Task:
    """The task ``config`` names, else the first whose data ``config.data`` are."""
    _with_plugins()
    if config.task is not None:
        return task_named(config.task)
    return next(task for task in TASKS.values() if task.claims(config.data))


def task_named(name: str | None) -> Task:
    """The task a run directory records (runs made before tasks were recorded are classification runs)."""
    if name is None:
        return TASKS["classification"]
    _with_plugins()
    if name not in TASKS:
        raise ConfigError(f"task: unknown task {name!r}; choose one of {', '.join(sorted(TASKS))}")
    return TASKS[name]


__all__ = ["TASKS", "Task", "register_task", "task_for", "task_named"]
