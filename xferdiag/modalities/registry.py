"""The registered modalities, by the kind of data each owns; the commands look a domain's modality up here
and never branch on the kind of data themselves. A new modality is its own package plus one call of
:func:`register_modality` (docs/architecture.md, "add a modality")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, fields
from types import ModuleType

import numpy as np

from ..config import RunConfig
from ..data import Domain, InputSpec
from ..errors import ConfigError, DataError
from .base import ExplainJob, Modality
from .descriptor import DESCRIPTORS
from .image.plugin import ImageModality
from .loading import LOADERS
from .models import MODEL_SIDES
from .table.plugin import TableModality
from .text.plugin import TextModality

MODALITIES: dict[str, Modality] = {m.name: m for m in (ImageModality(), TableModality(), TextModality())}
"""Every registered modality by the kind it owns (:data:`~xferdiag.modalities.kinds.KINDS`)."""

METHODS = tuple(dict.fromkeys(name for modality in MODALITIES.values() for name in modality.methods))
"""Every explainer the built-in modalities have, images' first (a method a modality lacks is skipped there)."""


def register_modality(plugin: Modality, model_side: ModuleType, loader: Callable[[str], Domain | None]) -> Modality:
    """Add a modality plug-in under its kind (``plugin.name``): the report and the command line read its descriptor
    (``plugin.descriptor``), the commands its plug-in, the model builder its ``model_side`` (a module with ``NAME``,
    ``example(spec, n)`` and ``TRANSFER_MODEL``, as :mod:`.image.model`), and :func:`xferdiag.modalities.loading.load_domain`
    asks ``loader`` first whether a data spec is its own (a :class:`~xferdiag.data.Domain`, or None). Registering
    a kind again replaces it."""
    if not plugin.name == plugin.descriptor.name == model_side.NAME:
        raise ValueError(f"modality {plugin.name!r}: its descriptor and model side name {plugin.descriptor.name!r} "
                         f"and {model_side.NAME!r}")
    DESCRIPTORS[plugin.name] = plugin.descriptor
    MODALITIES[plugin.name] = plugin
    MODEL_SIDES[plugin.name] = model_side
    LOADERS[plugin.name] = loader
    return plugin


def modality_of(domain: Domain) -> Modality:
    return MODALITIES[domain.kind]


def keep_whole(domain: Domain, specs: list[InputSpec], truncate: bool) -> np.ndarray | None:
    """The one rule for over-long inputs: with truncation on (``truncate``), or for data no model cuts, None (every
    example is kept); else which examples every model of ``specs`` reads whole, an error when none is."""
    if truncate or not modality_of(domain).descriptor.cuts_long_inputs:
        return None
    masks = [mask for spec in specs if (mask := modality_of(domain).fits_whole(domain, spec)) is not None]
    if not masks:
        return None
    keep = np.logical_and.reduce(masks)
    if not keep.any():
        raise DataError(f"no example of {domain.spec} fits whole in the input of every model and truncation is off "
                        "(--no-truncate): raise --max-length or let texts be truncated")
    return keep


def check_options(config: RunConfig, kind: str) -> None:
    """The one check of the options that belong to a kind of data (each descriptor's ``options``): one that another
    kind's descriptor declares and ``kind``'s does not, set to other than its default, would be silently ignored and
    ends here instead. An option several kinds declare (a shared one) applies to each of them."""
    own, defaults = DESCRIPTORS[kind], {f.name: f for f in fields(RunConfig)}
    for descriptor in DESCRIPTORS.values():
        for option in descriptor.options:
            field = defaults[option]
            default = field.default_factory() if field.default_factory is not MISSING else field.default
            if option not in own.options and getattr(config, option) != default:
                raise ConfigError(f"{option}: applies to {descriptor.name} data; this run's data is {own.data}")


__all__ = ["METHODS", "MODALITIES", "ExplainJob", "Modality", "check_options", "keep_whole", "modality_of", "register_modality"]
