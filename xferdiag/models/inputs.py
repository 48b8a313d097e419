"""The input a model takes, resolved from what the model says, what the user says and the data.

Channels come from the model's first convolution (a CNN stem or a ViT's patch embedding); size,
mean and std from the weights' own preprocessing where torchvision or timm records it. Where the
model records no size, the data's own size is the better guess (:func:`choose_size`): a small CNN
blown up to 224 px costs about 200x more per step and sees its pixels at a scale it never saw. The
user overrides any of them (``--channels``, ``--image-size``, ``--mean``/``--std``, ``--normalize
none``). The resolved spec and where each part came from go into run.json; the words of the line
that says so on the terminal are here too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import nn

from ..data.spec import IMAGENET, InputSpec
from ..errors import ModelError
from ..modalities.descriptor import describe_modality
from .builtin import builtin_input_spec
from .source import ModelSource

DEFAULT_SIZE = 224
"""Square input size when neither the model nor the user names one and no data size is known: what ImageNet
models take; also the most a guess from the data's size goes to."""

UPSAMPLE_WARNING = 4
"""Upsampling factor (model input side over the images' own side) from which the run warns."""

UNIT_RANGE = (0.5, 0.5)
"""Mean and std for non-RGB inputs of a model that records none: maps [0, 1] to [-1, 1]."""
IMAGE_SETTINGS = ("image_size", "channels", "mean", "std", "normalize")
"""The run settings :func:`resolve_input` applies to a model's input (a modality whose options hold none has nothing to resolve)."""


@dataclass(frozen=True)
class InputRequest:
    """What the user said about the input; ``None`` leaves the choice to the model."""

    channels: int | None = None
    image_size: int | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    normalize: str = "auto"
    max_length: int | None = None

    @classmethod
    def of(cls, config) -> InputRequest:
        """The request recorded in a :class:`~xferdiag.config.RunConfig` (or anything with its fields)."""
        as_tuple = lambda v: tuple(float(x) for x in v) if v else None  # noqa: E731
        return cls(config.channels, config.image_size, as_tuple(config.mean), as_tuple(config.std), config.normalize,
                   getattr(config, "max_length", None))


def model_channels(model: nn.Module) -> int | None:
    """Input channels of the first convolution (stem or patch embedding), or None for a model without one."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels
    return None


def _per_channel(values: tuple[float, ...], channels: int, name: str) -> tuple[float, ...]:
    if len(values) == channels:
        return values
    if len(values) == 1:
        return values * channels
    raise ModelError(f"{name}: {len(values)} values for a model that takes {channels} channel(s); give {channels} or one")


@dataclass(frozen=True)
class SizeChoice:
    """The square input size and where it came from, in words (``reason``); ``guessed`` when neither the
    model's weights nor the user named it; ``data_side`` the target images' own side (see :func:`data_side`)."""

    size: int
    reason: str
    guessed: bool = False
    data_side: int | None = None


def data_side(sizes) -> tuple[int, bool] | None:
    """(side, mixed) of images with these (height, width) rows: the shorter side, so that no side is
    upsampled, and the median one where sizes differ (``mixed``); None when no size is known."""
    if sizes is None or len(sizes) == 0:
        return None
    sizes = np.asarray(sizes).reshape(-1, 2)
    return int(np.median(sizes.min(axis=1))), bool((sizes != sizes[0]).any())


def _sizes_in_words(sizes) -> str:
    sizes = np.asarray(sizes).reshape(-1, 2)
    lo, hi = sizes.min(axis=0), sizes.max(axis=0)
    return f"{lo[0]}x{lo[1]} px" if (lo == hi).all() else f"{lo.min()} to {hi.max()} px a side"


def _guess(target_sizes, source_sizes) -> tuple[int, str]:
    """The source data's size (what the pretrained model most likely saw), else the target data's own,
    capped at :data:`DEFAULT_SIZE`; without either, :data:`DEFAULT_SIZE`."""
    for sizes, whose, why in ((source_sizes, "source", ", what the pretrained model most likely saw"), (target_sizes, "target", "")):
        found = data_side(sizes)
        if found is None:
            continue
        side, mixed = found
        if side > DEFAULT_SIZE:
            return DEFAULT_SIZE, f"the most by default for the {whose} data's larger images of {_sizes_in_words(sizes)}"
        if mixed:
            return side, f"the median shorter side of the {whose} data's mixed-size images, {_sizes_in_words(sizes)}{why}"
        return side, f"the {whose} data's {'own size' if whose == 'target' else 'size'}{why}"
    return DEFAULT_SIZE, "ImageNet's usual size (no data size known)"


def choose_size(recorded: tuple[int | None, str] | None, image_size: int | None, target_sizes=None, source_sizes=None) -> SizeChoice:
    """The input size: ``image_size`` (the user's) always; else the size the weights record (``recorded``:
    size and origin); else a guess from the data's sizes ((height, width) rows): the source data's, else
    the target's own, never above :data:`DEFAULT_SIZE` (large or mixed-size photos), so a model that
    records no size is not fed images upsampled beyond their own size by default."""
    found = data_side(target_sizes)
    side = found[0] if found else None
    if image_size is not None:
        return SizeChoice(int(image_size), "from --image-size", data_side=side)
    if recorded is not None and recorded[0]:
        return SizeChoice(int(recorded[0]), f"recorded by {recorded[1]}", data_side=side)
    size, reason = _guess(target_sizes, source_sizes)
    return SizeChoice(size, reason, guessed=True, data_side=side)


def recorded_choice(spec: InputSpec) -> SizeChoice:
    """The size of a resumed run: what it began with, recorded in its run directory (no upsampling warning:
    the run cannot change it now)."""
    return SizeChoice(spec.size, "as the run recorded it when it began")


def input_lines(choice: SizeChoice | None, checkpoint: bool, model: str | None = None) -> list[str]:
    """The terminal's line on an image model's input (and a warning when images are upsampled :data:`UPSAMPLE_WARNING`
    times or more); ``checkpoint``: pretrained weights of the user's were given, trained at a size we cannot
    know; ``model`` names the model where several are (rank's candidates)."""
    if choice is None:
        return []  # texts and tables: their size is no guess (the tokenizer's, the table's width)
    line = f"input{f' of {model}' if model else ''}: {choice.size}x{choice.size} px, {choice.reason}"
    if choice.guessed:
        line += " (the model records no input size)"
        if checkpoint:
            line += "; if its pretrained weights saw another size, say so: --image-size 224 for a model pretrained on ImageNet"
    lines = [line]
    if choice.data_side and choice.size >= UPSAMPLE_WARNING * choice.data_side:
        factor = choice.size / choice.data_side
        lines.append(f"xferdiag: warning: {f'{model}: ' if model else ''}images of {choice.data_side} px are upsampled "
                     f"{factor:.0f}x to {choice.size} px, about {factor ** 2:.0f}x the compute per image; "
                     f"--image-size {choice.data_side} trains at their own size")
    return lines


def resolve_input(source: ModelSource, classifier: nn.Module | None, request: InputRequest = InputRequest(), target_sizes=None,
                  source_sizes=None, plain: InputSpec | None = None) -> tuple[InputSpec, SizeChoice | None]:
    """The spec examples are prepared to, and how its size was chosen (None for texts and tables);
    ``origin`` says where its size and normalisation came from. ``target_sizes``/``source_sizes``: the
    data's image sizes ((height, width) rows, :meth:`~xferdiag.data.Domain.image_sizes`), for a model that
    records no size; without them such a model takes :data:`DEFAULT_SIZE`, as runs made before recorded.

    ``classifier`` is the source model (its first convolution gives the channels); None builds one. ``plain``: the
    input the data give a model without convolutions (:meth:`~xferdiag.data.Domain.plain_input`, a table's rows),
    taken when the model has none.
    """
    if source.from_directory:  # its tokenizer says what it takes
        from ..modalities.models import directory_side  # the plug-ins' model sides build on this layer

        return directory_side().directory_input_spec(source, request.max_length), None
    if source.kind == "builtin":
        builtin = builtin_input_spec(source.arch, source.options, request.image_size)
        if set(describe_modality(builtin.kind).options).isdisjoint(IMAGE_SETTINGS):  # a table's spec: nothing to resolve
            return builtin, None
        inferred, known = builtin.channels, (builtin.size, builtin.mean, builtin.std, f"built-in {source.arch}")
    else:
        classifier = classifier if classifier is not None else source.build_classifier()
        inferred, pre = model_channels(classifier), source.preprocessing()
        if inferred is None and plain is not None:
            return plain, None
        known = (pre.size, pre.mean, pre.std, pre.origin) if pre is not None else None
    if request.channels is not None and inferred is not None and request.channels != inferred:
        raise ModelError(f"channels {request.channels}: the model's first convolution takes {inferred} channel(s)")
    channels = request.channels or inferred or 3
    mean, std = IMAGENET if channels == 3 else ((UNIT_RANGE[0],), (UNIT_RANGE[1],))
    origin = "channels from the first convolution, ImageNet defaults" if inferred else "ImageNet defaults"
    if known is not None:
        origin = known[3]
        if known[1] and len(known[1]) in (1, channels):
            mean, std = known[1], known[2]
    choice = choose_size(known and (known[0], known[3]), request.image_size, target_sizes, source_sizes)
    if request.image_size is not None:
        origin = f"{origin}; size from --image-size"
    elif choice.guessed and (target_sizes is not None or source_sizes is not None):
        origin = f"{origin}; size: {choice.reason}"
    if request.normalize == "none":
        mean, std, origin = (0.0,), (1.0,), f"{origin}; no normalisation"
    elif request.mean or request.std:
        mean, std, origin = request.mean or mean, request.std or std, f"{origin}; mean/std from the user"
    spec = InputSpec(channels, choice.size, _per_channel(tuple(mean), channels, "mean"), _per_channel(tuple(std), channels, "std"), origin)
    return spec, choice


def resolve_input_spec(source: ModelSource, classifier: nn.Module | None, request: InputRequest = InputRequest(), target_sizes=None,
                       source_sizes=None) -> InputSpec:
    """The spec of :func:`resolve_input`, without the words on its size."""
    return resolve_input(source, classifier, request, target_sizes, source_sizes)[0]
