"""What a run directory holds, which missing step its files allow, and why the others cannot run."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..modalities.descriptor import ModalityDescriptor, describe_modality
from ..sweeps import scratch_arms, sweep_of, transfer_arms
from ..tasks.descriptor import TaskDescriptor, describe_task
from .kinds import kind_of
from .layout import (
    MODEL_PT,
    RECORD_SUFFIXES,
    SIMILARITY_JSON,
    TRANSFERABILITY_JSON,
    RunDir,
)
from .readers import optional_object

STEPS = ("verdict", "analysis", "explanations")
"""The steps that add to a finished run directory, in the order ``xferdiag report`` computes them."""


@dataclass(frozen=True)
class RunStatus:
    """``done``: the steps whose results are there; ``blocked``: step -> why the files present cannot
    produce it. A step in neither can be computed now (:meth:`can_compute`)."""

    done: frozenset[str]
    blocked: Mapping[str, str]

    def can_compute(self, step: str) -> bool:
        return step not in self.done and step not in self.blocked

    @classmethod
    def of(cls, run: RunDir, config: Mapping, has_pretrained: Callable[[], bool]) -> RunStatus:
        """The status of ``run`` whose run.json holds ``config``.

        The verdict needs finished seeds of the scratch arm and every transfer arm (one, or one per value of a
        sweep), each with predictions; analysis and explanations need the config's data and model and the
        transfer arm's weights (a sweep's several arms are not analysed yet); the analysis
        needs the pretrained weights too, which only the caller can tell from the model's name
        (``has_pretrained``, asked only while the analysis is missing and the rest is there: parsing a
        model's name can load torchvision, which a computed run's report does without).
        """
        task = describe_task(config.get("task"))
        done = {step for step, there in (
            ("verdict", run.verdict_json.is_file()),
            ("analysis", all(getattr(run, f"{name}_json").is_file() for name in task.analyses)),
            ("explanations", run.index_json.is_file()),
        ) if there}
        blocked = {}
        arms = [*transfer_arms(config), *scratch_arms(config)]
        finished = [run.seed(arm, s) for arm in arms for s in run.seeds(arm)]
        if not all(run.seeds(arm) for arm in arms) or not all(
                any(seed.record_files(name) for name in task.records) for seed in finished):
            files = " or ".join(f"{name}{RECORD_SUFFIXES[0]}/{RECORD_SUFFIXES[1]}" for name in task.records)
            blocked["verdict"] = (f"needs finished seeds of {'both arms' if len(arms) == 2 else 'every arm'} ({', '.join(arms)}), "
                                  f"each with {files}")
        return cls(frozenset(done), {**blocked, **_analysis_blocked(run, config, task, done, has_pretrained)})


def run_modality(run: RunDir) -> ModalityDescriptor:
    """The descriptor of the kind of data data.json records (images where it records none)."""
    return describe_modality(kind_of((optional_object(run.data_json) or {}).get("kind")))


def lacking_stage(task: TaskDescriptor, task_name: str | None, modality: ModalityDescriptor, stage: str) -> str | None:
    """Why ``stage`` cannot run on a run of this task and kind of data, in the one wording (the task's reason
    first); None where both support it."""
    if not task.supports(stage):
        return task.not_yet(task_name)
    return None if modality.supports(stage) else modality.not_yet()


def _analysis_blocked(run: RunDir, config: Mapping, task: TaskDescriptor, done: set[str], has_pretrained: Callable[[], bool]) -> dict:
    """Why the analysis and the explanations cannot run: the run's task or its kind of data lacks the stage (that
    reason wins), or the run lacks what they load (a sweep's several transfer arms are not analysed yet)."""
    lacking = {step: why for step, stage in (("analysis", "analyze"), ("explanations", "explain"))
               if (why := lacking_stage(task, config.get("task"), run_modality(run), stage))}
    seeds = run.seeds("transfer")
    blocked = {}
    if sweep_of(config):
        blocked = dict.fromkeys(("analysis", "explanations"), f"not available for a {sweep_of(config).setting} sweep yet")
    elif not (config.get("data") and config.get("model")):
        blocked = dict.fromkeys(("analysis", "explanations"), "run.json's config names no data and model to load")
    elif not (seeds and run.seed("transfer", seeds[0]).model_pt.is_file()):
        blocked = dict.fromkeys(("analysis", "explanations"), f"the transfer arm has no {MODEL_PT}")
    elif "analysis" not in done and "analysis" not in lacking and not has_pretrained():
        blocked["analysis"] = (f"no pretrained weights recorded to compare with ({TRANSFERABILITY_JSON} and "
                               f"{SIMILARITY_JSON} need them)")
    return {**blocked, **lacking}
