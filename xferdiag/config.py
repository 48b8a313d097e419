"""Run configuration: one dataclass, validated on construction, round-tripped through JSON/TOML.

The CLI flags, config files and the Python API all build the same :class:`RunConfig`, so a run is
reproducible from the ``config`` block of its ``run.json`` alone.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from .catchup import CATCH_UP_MARGIN
from .errors import ConfigError
from .sweeps import SWEEPABLE, sweep_of

STRATEGIES = ("linear-probe", "freeze", "partial", "full", "lp-ft")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("cosine", "step", "none")
BASELINES = ("scratch", "none")
PATH_FIELDS = ("data", "source_data", "pretrained_checkpoint")  # recorded as absolute paths in run.json
RANK_FIELDS = ("image_size", "max_length", "truncate", "device", "detector_scale")  # the settings `rank` takes too, same flags
DETECTOR_NORMS = ("batch", "group", "frozen")
"""Detection: the normalisation layers of both arms (see :mod:`xferdiag.tasks.detection.settings`)."""
DETECTOR_SCALES = ("cpu", "torchvision")
"""Detection: how much a step samples and keeps per image: xferdiag's CPU scale or torchvision's own defaults."""
NORMALIZE = ("auto", "none")  # auto: the weights' own mean/std (or --mean/--std); none: feed [0, 1] pixels

#: Seconds of training between mid-run checkpoints. Each checkpoint holds the model and the
#: optimiser state (three times the weights with Adam), so writing one after every short epoch of
#: a few-shot run can cost more than the epoch; a resume replays at most this much, exactly.
DEFAULT_CHECKPOINT_EVERY_S = 60.0
#: The smallest accuracy gap an inconclusive verdict plans to decide (3 points); see xferdiag.sequential.
DEFAULT_MIN_EFFECT = 0.03


@dataclass(frozen=True)
class Budget:
    """Seconds for the explanations. A ``strict`` budget (one a user gave) below what one example
    needs is an error; a default one runs the smallest plan and says it took longer. It lives here,
    not beside the plans it sizes (:mod:`xferdiag.explainers.budget`), so that ``report`` on a
    computed run can name its default without loading torch."""

    seconds: float
    strict: bool = True


DEFAULT_BUDGET = Budget(90.0, strict=False)
"""What the commands give image and text explanations unless told otherwise (``--budget``)."""


@dataclass
class RunConfig:
    """Everything that decides what a run computes. Field names are the config-file keys."""

    data: str = "digits:rotated"
    model: str = "builtin:digits-cnn"
    task: str | None = None  # what is predicted; None: what the data say (a COCO/VOC/YOLO folder means detection)
    backbone: str | None = None  # detection: the classification backbone a detector is built on (any --model spelling)
    detector_norm: str = "batch"
    detector_scale: str = "cpu"
    fpn_channels: int = 128  # detection on --backbone: the pyramid's width (torchvision's use 256; reports/benchmarks.md)
    pretrained_checkpoint: str | None = None
    source_data: str | None = None
    strategy: str | list[str] = "full"  # several (a list, or "a,b" on the command line): one transfer arm each
    partial_blocks: int = 1
    head_hidden: list[int] = field(default_factory=list)
    head_dropout: float = 0.0
    epochs: int = 10
    lp_epochs: int | None = None
    batch_size: int = 64
    optimizer: str = "adamw"
    lr: float | list[float] = 1e-3
    backbone_lr_mult: float | list[float] = 1.0
    layer_decay: float | list[float] = 1.0
    weight_decay: float = 1e-4
    momentum: float = 0.9
    l2sp: float = 0.0
    schedule: str = "cosine"
    warmup_epochs: int = 0
    step_size: int = 10
    gamma: float = 0.1
    patience: int | None = None
    seeds: int = 3
    min_effect: float = DEFAULT_MIN_EFFECT
    baseline: str = "scratch"
    scratch_lr: float | str | None = None
    scratch_epochs: int | str | None = None
    catch_up_margin: float = CATCH_UP_MARGIN
    shots: list[int | str] = field(default_factory=lambda: ["all"])
    val_fraction: float = 0.15
    test_fraction: float = 0.25
    split_seed: int = 0
    image_size: int | None = None
    max_length: int | None = None
    truncate: bool = True
    freeze_embeddings: bool = False
    channels: int | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    normalize: str = "auto"
    augment: bool = True
    group_by_length: bool = False
    device: str = "auto"
    amp: str = "auto"
    channels_last: bool = False
    compile: bool = False
    workers: int = 0
    threads: int | None = None
    checkpoint_every: float = DEFAULT_CHECKPOINT_EVERY_S

    def __post_init__(self) -> None:
        self.validate()

    # --- validation ---------------------------------------------------------------------------
    def validate(self) -> None:
        """Check every field, in the order a reader meets them: names and switches, the training
        numbers, then the optional and list-valued settings; the first problem raises."""
        self._normalise_sweep()
        self._check_names_and_switches()
        self._check_training_numbers()
        self._check_optional_settings()

    def _normalise_sweep(self) -> None:
        """A swept setting (:mod:`xferdiag.sweeps`) holds a list of two or more distinct values, otherwise one value,
        so a run without a sweep records exactly what it did before; at most one setting is swept per run."""
        for name in SWEEPABLE:
            value = getattr(self, name)
            if isinstance(value, str) and "," in value:
                value = [v.strip() for v in value.split(",") if v.strip()]
            if isinstance(value, (list, tuple)):
                if not value:
                    raise ConfigError(f"{name}: expected a value or a list of values, got an empty list")
                if len({_arm_key(v) for v in value}) != len(value):  # two values, one arm folder
                    raise ConfigError(f"{name}: a sweep lists each value once, got {', '.join(map(str, value))}")
                value = list(value) if len(value) > 1 else value[0]
            setattr(self, name, value)
        swept = [name for name in SWEEPABLE if isinstance(getattr(self, name), list)]
        if len(swept) > 1:
            raise ConfigError(f"{', '.join(swept)}: a run sweeps one setting at a time; list several values of only one of them")

    def _values(self, name: str) -> list:
        value = getattr(self, name)
        return value if isinstance(value, list) else [value]

    def _choice(self, name: str, options: tuple[str, ...]) -> None:
        for value in self._values(name):
            if value not in options:
                raise ConfigError(f"{name}: unknown value {value!r}; choose one of {', '.join(options)}")

    def _positive(self, name: str, minimum: float = 1, integer: bool = True) -> None:
        for value in self._values(name):
            self._check_positive(name, value, minimum, integer)

    @staticmethod
    def _check_positive(name: str, value: Any, minimum: float, integer: bool) -> None:
        kind = int if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kind) or value < minimum:
            raise ConfigError(f"{name}: must be {'an integer' if integer else 'a number'} >= {minimum}, got {value!r}")

    def _fraction(self, name: str, upper: float = 1.0) -> None:
        value = getattr(self, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < upper:
            raise ConfigError(f"{name}: must be a number in [0, {upper}), got {value!r}")

    def _check_names_and_switches(self) -> None:
        """What to train on and with, the named choices, the on/off switches and the device."""
        for name in ("data", "model"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ConfigError(f"{name}: required (a non-empty string)")
        self._choice("strategy", STRATEGIES)
        self._choice("optimizer", OPTIMIZERS)
        self._choice("schedule", SCHEDULES)
        self._choice("baseline", BASELINES)
        self._choice("amp", ("auto", "on", "off"))
        self._choice("normalize", NORMALIZE)
        self._choice("detector_norm", DETECTOR_NORMS)
        self._choice("detector_scale", DETECTOR_SCALES)
        for name in ("augment", "truncate", "freeze_embeddings", "group_by_length", "channels_last", "compile"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name}: must be true or false, got {getattr(self, name)!r}")
        for name in ("task", "backbone"):
            if getattr(self, name) is not None and (not isinstance(getattr(self, name), str) or not getattr(self, name)):
                raise ConfigError(f"{name}: must be a non-empty string, got {getattr(self, name)!r}")
        if not isinstance(self.device, str) or not self.device:
            raise ConfigError(f"device: must be auto, cpu, cuda or cuda:N, got {self.device!r}")

    def _check_training_numbers(self) -> None:
        """Budget, optimisation and regularisation numbers, and the split fractions."""
        for name in ("epochs", "batch_size", "seeds", "partial_blocks", "step_size", "fpn_channels"):
            self._positive(name)
        self._positive("warmup_epochs", 0)
        self._positive("workers", 0)
        self._positive("checkpoint_every", 0, integer=False)
        for name in ("lr", "momentum", "gamma", "backbone_lr_mult", "layer_decay"):
            self._positive(name, 0, integer=False)
        if min(self._values("lr")) <= 0:
            raise ConfigError(f"lr: must be > 0, got {self.lr!r}")
        for name in ("weight_decay", "l2sp", "head_dropout"):
            self._positive(name, 0, integer=False)
        if self.head_dropout >= 1:
            raise ConfigError(f"head_dropout: must be < 1, got {self.head_dropout!r}")
        for name in ("val_fraction", "test_fraction"):
            self._fraction(name)
        if isinstance(self.min_effect, bool) or not isinstance(self.min_effect, (int, float)) or not 0 < self.min_effect < 1:
            raise ConfigError(f"min_effect: must be an accuracy gap in (0, 1) (0.03 is 3 points), got {self.min_effect!r}")
        if self.val_fraction + self.test_fraction >= 1:
            raise ConfigError("val_fraction + test_fraction: must leave examples for training (sum < 1)")

    def _check_optional_settings(self) -> None:
        """Settings that may be left out (None: the default) and the list-valued ones, normalised in place."""
        for name in ("mean", "std"):
            self._check_stats(name)
        for name in ("patience", "lp_epochs", "image_size", "max_length", "threads", "channels"):
            if getattr(self, name) is not None:
                self._positive(name)
        if self.scratch_epochs is not None and self.scratch_epochs != "auto":
            if isinstance(self.scratch_epochs, str):
                raise ConfigError(f"scratch_epochs: must be an integer >= 1 or 'auto' (1x, 2x and 4x --epochs), "
                                  f"got {self.scratch_epochs!r}")
            self._positive("scratch_epochs")
        if self.scratch_epochs == "auto" and self.baseline != "scratch":
            raise ConfigError("scratch_epochs: 'auto' trains the scratch arm at 1x, 2x and 4x --epochs; it needs --baseline scratch")
        margin = self.catch_up_margin
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 < margin < 1:
            raise ConfigError(f"catch_up_margin: must be an accuracy gap in (0, 1) (0.02 is 2 points), got {margin!r}")
        lr = self.scratch_lr
        if lr is not None and lr != "auto" and (isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < math.inf):
            raise ConfigError(f"scratch_lr: must be a positive number or 'auto' (a short search on the validation split), got {lr!r}")
        if not isinstance(self.head_hidden, list) or not all(
            isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in self.head_hidden
        ):
            raise ConfigError(f"head_hidden: must be a list of positive integers, got {self.head_hidden!r}")
        self.shots = parse_shots(self.shots)
        if sweep_of(self.to_dict()) and len(self.shots) > 1:
            raise ConfigError(f"shots: a sweep ({sweep_of(self.to_dict()).setting}) trains at one training size; "
                              f"run one sweep per --shots value, got {self.shots}")
        if self.lp_epochs is not None and self.lp_epochs >= self.epochs and "lp-ft" in self._values("strategy"):
            raise ConfigError("lp_epochs: must be smaller than epochs (the rest is full fine-tuning)")

    def _check_stats(self, name: str) -> None:
        """Per-channel normalisation: a list of numbers (std strictly positive), or None for the model's own."""
        value = getattr(self, name)
        if value is None:
            return
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list) or not value or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value):
            raise ConfigError(f"{name}: must be one number or one per channel (e.g. 0.5,0.5,0.5), got {value!r}")
        if name == "std" and min(value) <= 0:
            raise ConfigError(f"std: must be > 0 for every channel, got {value!r}")
        setattr(self, name, [float(v) for v in value])

    # --- round trip ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, source: str = "config") -> RunConfig:
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: expected a table of settings, got {type(values).__name__}")
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(known)}")
        try:
            return cls(**values)
        except (TypeError, ConfigError) as exc:  # name the file a wrong value came from
            raise ConfigError(f"{source}: {exc}") from None

    @classmethod
    def from_file(cls, path: str | Path) -> RunConfig:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        try:
            text = path.read_text(encoding="utf-8")
            values = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
        except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot parse config file ({exc})") from None
        return cls.from_dict(values, source=str(path))

    def with_absolute_paths(self) -> RunConfig:
        """The same run with its files named by absolute path, so run.json works from any folder later."""
        return self.replace(**{name: _absolute(getattr(self, name)) for name in PATH_FIELDS if getattr(self, name)})

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)


def _arm_key(value: Any) -> str:
    """What names a swept value's arm (:func:`xferdiag.sweeps.arm_name`): numbers by their ``:g`` spelling."""
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def _absolute(spec: str) -> str:
    """``spec`` with its path part made absolute where it names an existing file or folder
    (``data.csv:label`` keeps its column; built-in names such as ``digits:rotated`` stay as they are)."""
    head, sep, tail = spec.rpartition(":")
    for path, suffix in ((spec, ""), (head, sep + tail)):
        if path and Path(path).expanduser().exists():
            return f"{Path(path).expanduser().resolve()}{suffix}"
    return spec


def parse_shots(value: Any) -> list[int | str]:
    """Accept ``5``, ``"5,20,all"`` or ``[5, 20, "all"]``; return a list of positive ints and/or 'all'."""
    if isinstance(value, (int, str)) and not isinstance(value, bool):
        value = [v.strip() for v in str(value).split(",") if v.strip()]
    if not isinstance(value, list) or not value:
        raise ConfigError(f"shots: expected a number, 'all', or a list of them, got {value!r}")
    shots: list[int | str] = []
    for item in value:
        if isinstance(item, str) and item.lower() == "all":
            shots.append("all")
            continue
        try:
            k = int(item)
        except (TypeError, ValueError):
            raise ConfigError(f"shots: {item!r} is neither a positive integer nor 'all'") from None
        if isinstance(item, bool) or k < 1 or (isinstance(item, float) and item != k):
            raise ConfigError(f"shots: must be positive integers or 'all', got {item!r}")
        shots.append(k)
    return shots
