"""Sweeps in one run directory: several transfer arms (one per value of one swept setting) beside one scratch arm.

``--strategy linear-probe,lp-ft,full`` (or a list of ``--lr``, ``--backbone-lr-mult`` or ``--layer-decay`` values)
trains one transfer arm per value, all under the same seeds, splits, data order and budget, and ONE scratch arm
shared by them: the fair baseline does not depend on how the pretrained weights are adapted, so it is trained once.
A run without a list has the single arm ``transfer``, exactly as before. Torch-free: the run directory's status,
the verdict and the report ask it which arms a run's config made.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SWEEPABLE = ("strategy", "lr", "backbone_lr_mult", "layer_decay")
"""The transfer arm's settings a run may list several values of (one of them per run)."""
TRANSFER = "transfer"
SCRATCH = "scratch"
CATCH_UP = (1, 2, 4)
"""``--scratch-epochs auto``: the scratch arm's budgets, as multiples of ``--epochs`` (He, Girshick and Dollár 2019)."""


@dataclass(frozen=True)
class Sweep:
    """The swept ``setting``, its ``values`` in the order given and the arm each trains."""

    setting: str
    values: tuple
    arms: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"setting": self.setting, "values": list(self.values), "arms": list(self.arms)}


def arm_name(setting: str, value: Any) -> str:
    """A swept arm's stable, readable folder name: ``transfer-lp-ft``, ``transfer-lr-0.001``, ``transfer-layer-decay-0.65``."""
    if setting == "strategy":
        return f"{TRANSFER}-{value}"
    return f"{TRANSFER}-{setting.replace('_', '-')}-{value:g}"


def sweep_of(config: Mapping[str, Any]) -> Sweep | None:
    """The sweep a config (``RunConfig.to_dict()`` or run.json's ``config``) asks for; None for a single transfer arm."""
    for setting in SWEEPABLE:
        values = config.get(setting)
        if isinstance(values, list) and len(values) > 1:
            return Sweep(setting, tuple(values), tuple(arm_name(setting, v) for v in values))
    return None


def transfer_arms(config: Mapping[str, Any]) -> list[str]:
    """The transfer arms a config trains, in the order its values were given (``["transfer"]`` without a sweep)."""
    sweep = sweep_of(config)
    return list(sweep.arms) if sweep else [TRANSFER]


def arm_settings(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each transfer arm's own value of the swept setting (``{"transfer": {}}`` without a sweep)."""
    sweep = sweep_of(config)
    if sweep is None:
        return {TRANSFER: {}}
    return {arm: {sweep.setting: value} for arm, value in zip(sweep.arms, sweep.values)}


def scratch_base_lr(config: Mapping[str, Any]) -> float:
    """The rate the scratch arm is based on: ``lr``, or the first of an ``lr`` sweep (its rate is pinned once for all arms)."""
    lr = config["lr"]
    return lr[0] if isinstance(lr, list) else lr


def catches_up(config: Mapping[str, Any]) -> bool:
    """Whether a config asks for the catch-up sweep (``--scratch-epochs auto``)."""
    return config.get("scratch_epochs") == "auto"


def scratch_arm(multiple: int) -> str:
    """The scratch arm trained at ``multiple`` times the budget: ``scratch`` (1x, the one everything reads), ``scratch-2x``."""
    return SCRATCH if multiple == 1 else f"{SCRATCH}-{multiple}x"


def scratch_arms(config: Mapping[str, Any]) -> dict[str, int]:
    """Each scratch arm a config trains and its budget as a multiple of ``epochs`` (``{"scratch": 1}`` without catch-up)."""
    return {scratch_arm(m): m for m in (CATCH_UP if catches_up(config) else (1,))}


def is_scratch(arm: str) -> bool:
    """Whether ``arm`` starts from random weights (``scratch`` or one of the catch-up sweep's longer budgets)."""
    return arm == SCRATCH or arm.startswith(f"{SCRATCH}-")
