"""The input a model takes, resolved from what the model says and what the user says.

Channels come from the model's first convolution (a CNN stem or a ViT's patch embedding); size,
mean and std from the weights' own preprocessing where torchvision or timm records it. The user
overrides any of them (``--channels``, ``--image-size``, ``--mean``/``--std``, ``--normalize
none``). The resolved spec and where each part came from go into run.json.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..data.images import IMAGENET, TOKENS, InputSpec
from ..errors import ModelError
from . import text
from .builtin import builtin_input_spec
from .source import ModelSource
from .text import load_tokenizer

DEFAULT_MAX_LENGTH = 128
"""Tokens per text when the user names no --max-length."""

DEFAULT_SIZE = 224
"""Square input size when neither the model nor the user names one: what ImageNet models take."""

UNIT_RANGE = (0.5, 0.5)
"""Mean and std for non-RGB inputs of a model that records none: maps [0, 1] to [-1, 1]."""


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
    raise ModelError(f"--{name}: {len(values)} values for a model that takes {channels} channel(s); give {channels} or one")


def resolve_input_spec(source: ModelSource, classifier: nn.Module | None, request: InputRequest = InputRequest()) -> InputSpec:
    """The spec examples are prepared to; ``origin`` says where its size and normalisation came from.

    ``classifier`` is the source model (its first convolution gives the channels); None builds one.
    """
    if source.is_text:
        return text_input_spec(source, request.max_length)
    if source.kind == "builtin":
        builtin = builtin_input_spec(source.arch, source.options, request.image_size)
        if builtin.channels == 0:  # a table: no image preprocessing
            return builtin
        inferred, known = builtin.channels, (builtin.size, builtin.mean, builtin.std, f"built-in {source.arch}")
    else:
        classifier = classifier if classifier is not None else source.build_classifier()
        inferred, pre = model_channels(classifier), source.preprocessing()
        known = (pre.size, pre.mean, pre.std, pre.origin) if pre is not None else None
    if request.channels is not None and inferred is not None and request.channels != inferred:
        raise ModelError(f"--channels {request.channels}: the model's first convolution takes {inferred} channel(s)")
    channels = request.channels or inferred or 3
    size, (mean, std) = DEFAULT_SIZE, IMAGENET if channels == 3 else ((UNIT_RANGE[0],), (UNIT_RANGE[1],))
    origin = "channels from the first convolution, ImageNet defaults" if inferred else "ImageNet defaults"
    if known is not None:
        size, origin = known[0] or size, known[3]
        if known[1] and len(known[1]) in (1, channels):
            mean, std = known[1], known[2]
    if request.image_size is not None:
        size, origin = request.image_size, f"{origin}; size from --image-size"
    if request.normalize == "none":
        mean, std, origin = (0.0,), (1.0,), f"{origin}; no normalisation"
    elif request.mean or request.std:
        mean, std, origin = request.mean or mean, request.std or std, f"{origin}; mean/std from the user"
    return InputSpec(channels, int(size), _per_channel(tuple(mean), channels, "mean"),
                     _per_channel(tuple(std), channels, "std"), origin)


def position_limit(path, source: ModelSource) -> int | None:
    """Tokens a transformer's learned position embeddings cover (RoBERTa's first two rows are reserved), where
    config.json says; None for an LSTM/GRU over its embeddings, which reads no positions."""
    if text.parse_options(source.options, source.canonical)["encoder"] != "transformer":
        return None
    config = text.check_model_dir(path, source.canonical)
    positions = config.get("max_position_embeddings")
    if not isinstance(positions, int) or positions <= 0:
        return None
    return positions - 2 if "roberta" in str(config.get("model_type", "")) else positions


def text_input_spec(source: ModelSource, max_length: int | None) -> InputSpec:
    """Rows of ``max_length`` token ids made by the model directory's own tokenizer; without ``max_length``,
    the default or the most the model takes, whichever is fewer."""
    path = source.text_dir()
    tokenizer = load_tokenizer(str(path))
    limit = getattr(getattr(tokenizer, "init_kwargs", {}), "get", lambda *_: None)("model_max_length")
    limits = {"the model takes at most {} tokens": limit if isinstance(limit, int) and limit > 0 else None,
              "the model has position embeddings for {} tokens": position_limit(path, source)}
    length = int(max_length or min([DEFAULT_MAX_LENGTH, *filter(None, limits.values())]))
    for reason, most in limits.items():
        if most is not None and most < length:
            raise ModelError(f"--max-length {length}: {reason.format(most)}; give --max-length {most} or less")
    capped = not max_length and length < DEFAULT_MAX_LENGTH
    origin = f"tokenizer of {source.canonical}, {length} tokens{' (the most the model takes)' if capped else ''}"
    return InputSpec(TOKENS, length, (), (), origin, tokenizer=tokenizer)
