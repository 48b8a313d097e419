"""The one vocabulary of kinds of data and what each modality says about itself without loading torch.

Every record that names a kind of data (data.json's and run.json's ``kind``, every explanation index's
``kind``) spells it with one of :data:`KINDS`; the run directory reads older spellings once
(:mod:`xferdiag.rundir.kinds`); a plug-in's kind joins them when it registers. The report and the command line
read a modality's descriptor here.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points

from ..errors import ConfigError
from .image.descriptor import DESCRIPTOR as IMAGE_DESCRIPTOR
from .kinds import IMAGE, KINDS, TABLE, TEXT
from .table.descriptor import DESCRIPTOR as TABLE_DESCRIPTOR
from .text.descriptor import DESCRIPTOR as TEXT_DESCRIPTOR

REQUIRED = ("finetune", "verdict", "report")
STAGES = ("finetune", "verdict", "analyze", "explain", "report")
"""The stages a modality's descriptor may list; the first three every modality has."""


@dataclass(frozen=True)
class ModalityDescriptor:
    """``name``: one of :data:`KINDS` or a registered plug-in's kind; ``takes``: what its models take, in words;
    ``section``: the report's explanation section for it (:mod:`xferdiag.report.sections`; None: it has no
    explainers yet); ``methods_words``: its explainers as the report names them; ``explainers``: the module its
    explainers need (None: always there); ``options``: the run settings (:class:`~xferdiag.config.RunConfig` fields)
    that apply to it, which a run of a kind that does not declare them may not set
    (:func:`xferdiag.modalities.registry.check_options`); ``source_head``: whether a pretrained model of this kind
    keeps its source task's classifier (a text model's directory gets a new head); ``recorded_input``: whether
    run.json's input record rebuilds a model's input (a text model's needs its tokenizer, rebuilt from the model);
    ``input_words``: data.json's ``input`` and whether texts are truncated, in words for the report."""

    name: str
    takes: str
    section: str | None
    methods_words: str
    explainers: str | None
    options: tuple[str, ...]
    source_head: bool
    recorded_input: bool
    input_words: Callable[[dict, bool], str | None]
    data_words: str = ""
    """Data of this kind in words, as a run's error names them ("a table"; empty: "<name> data")."""
    long_inputs: tuple[str, str] = ("inputs", "longer than the model's input of {size}")
    """With ``truncate`` among its ``options``: its inputs, and what makes one too long for a model (``{size}``: the
    model's input size), in the words of the warnings that count those left out."""
    stages: tuple[str, ...] = STAGES
    """The commands on a finished run its plug-in supports (finetune, verdict and report always): a modality may land
    before its analyses and explainers do; the others end in one line and the report says they are not available."""

    def __post_init__(self):
        if not set(REQUIRED) <= set(self.stages) <= set(STAGES):
            raise ValueError(f"stages {self.stages}: a subset of {', '.join(STAGES)} with at least {', '.join(REQUIRED)}")

    def supports(self, stage: str) -> bool:
        return stage in self.stages

    @property
    def data(self) -> str:
        """Data of this kind in words ("a table"), as a run's errors name them."""
        return self.data_words or f"{self.name} data"

    def not_yet(self) -> str:
        """Why a stage this modality lacks cannot run, in the words every such message uses."""
        return f"not available for {self.name} data yet"

    @property
    def cuts_long_inputs(self) -> bool:
        """Whether an input may be too long for a model, and is then cut or, with truncation off, left out."""
        return "truncate" in self.options

    def can_explain(self) -> bool:
        """Whether this build has the modality's explainers (text's live in a module of their own)."""
        return self.explainers is None or importlib.util.find_spec(self.explainers) is not None


DESCRIPTORS = {d.name: d for d in (ModalityDescriptor(**IMAGE_DESCRIPTOR), ModalityDescriptor(**TABLE_DESCRIPTOR),
                                   ModalityDescriptor(**TEXT_DESCRIPTOR))}
"""Every known modality's descriptor by kind; :func:`xferdiag.modalities.registry.register_modality` adds a plug-in's."""
ENTRY_POINTS = "xferdiag.modalities"
"""The entry-point group of installed packages' modality plug-ins: each names a function that registers its modality
(one call of :func:`xferdiag.modalities.registry.register_modality`, as ``tests/toy_modalities/sequence``'s ``register``)."""
_looked: list[bool] = []


def discover() -> None:
    """Register the modality plug-ins of :data:`ENTRY_POINTS` (once per process), so that every xferdiag process, the
    command line's included, knows their kinds. Only a kind no built-in modality has (and a data spec to load) looks
    for them, so a built-in run's report still imports no torch."""
    if not _looked:
        _looked.append(True)
        for point in entry_points(group=ENTRY_POINTS):
            try:
                point.load()()
            except Exception as exc:  # an installed package's broken plug-in: one line that names it
                raise ConfigError(f"modality plug-in {point.name!r} ({point.value}) does not load: {exc}") from None


def known(kind: str) -> bool:
    """Whether ``kind`` is a registered modality's, the installed packages' plug-ins included (:func:`discover`)."""
    if kind not in DESCRIPTORS:
        discover()
    return kind in DESCRIPTORS


def describe_modality(kind: str | None) -> ModalityDescriptor:
    """The descriptor of ``kind`` as a run records it (read through :mod:`xferdiag.rundir.kinds`); an unknown or
    missing kind reads as images, the first kind xferdiag had."""
    return DESCRIPTORS[kind] if kind and known(kind) else DESCRIPTORS[IMAGE]


__all__ = ["DESCRIPTORS", "ENTRY_POINTS", "IMAGE", "KINDS", "STAGES", "TABLE", "TEXT", "ModalityDescriptor", "describe_modality",
           "discover", "known"]
