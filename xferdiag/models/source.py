"""Where a model comes from: the ``--model`` spec, parsed once, and the classifier it builds.

Specs users write (shared/DESIGN.md, "Contract: command line"):

* ``resnet18`` or ``resnet18:IMAGENET1K_V1``: a torchvision architecture, optionally with named weights;
* ``timm:NAME``: a timm architecture (random weights; ``--pretrained-checkpoint`` supplies them);
* ``module:function`` or ``package.module:function``: a function of the user's returning an ``nn.Module``,
  importable from the working directory or ``sys.path``;
* ``path/to/file.py:function``: the same, from a file;
* ``builtin:NAME[:OPTIONS]``: the demo's models, and those a modality builds (``builtin:tabular-mlp``,
  ``builtin:minilm``: text, the ``text`` extra);
* ``hf:DIR[:OPTIONS]``: a local Hugging Face model directory, for text.

A modality's own models are built by its model side (:mod:`xferdiag.modalities.models`), asked here.

``NAME:SOMETHING`` is ambiguous between torchvision weights and a module's function, so torchvision
names are tried first and an error says what was tried.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import inspect
import io
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from ..errors import ModelError
from ..modalities.kinds import IMAGE
from .builtin import BUILTINS, RANDOM, SHIPPED_WEIGHTS, build_builtin
from .surgery import strip_auxiliary


@dataclass(frozen=True)
class Preprocessing:
    """What a model's weights were trained on, when the model says: square size, mean, std."""

    size: int | None
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    origin: str


@dataclass(frozen=True)
class ModelSource:
    """A parsed model spec: ``kind`` is torchvision, timm, callable, file, builtin or hf."""

    arch: str
    kind: str
    weights: str | None = None
    options: str | None = None

    @classmethod
    def parse(cls, spec: str) -> ModelSource:
        if not isinstance(spec, str) or not spec.strip():
            raise ModelError("model: give an architecture name, timm:NAME, module:function or file.py:function")
        spec = spec.strip()
        if spec.startswith("builtin:"):
            name, _, options = spec.split(":", 1)[1].partition(":")
            from ..modalities.models import builtin_names  # the plug-ins' model sides build on this layer

            if name not in (*BUILTINS, *builtin_names()):
                names = ", ".join("builtin:" + b for b in (*BUILTINS, *builtin_names()))
                raise ModelError(f"model {spec!r}: unknown built-in; choose one of {names}")
            return cls(name, "builtin", options=options or None)
        if spec.startswith("hf:"):
            with_options = re.match(r"^(.*?):([A-Za-z_]+=.*)$", spec[3:])  # hf:DIR:pool=lastk:2,encoder=lstm
            path, options = with_options.groups() if with_options else (spec[3:], "")
            if not path:
                raise ModelError("model 'hf:': give the Hugging Face model directory, hf:DIR")
            return cls(path, "hf", options=options or None)
        if spec.startswith("timm:"):
            return cls(spec.split(":", 1)[1], "timm")
        head, sep, tail = spec.rpartition(":")
        if sep and head.endswith(".py"):
            return cls(spec, "file")
        name, _, weights = spec.partition(":")
        import torchvision.models as tvm

        if name in tvm.list_models():
            return cls(name, "torchvision", weights or None)
        if sep and tail.isidentifier() and all(part.isidentifier() for part in head.split(".")):
            return cls(spec, "callable")
        raise ModelError(
            f"model {spec!r}: not a torchvision architecture ({name!r}) nor module:function (that needs a function "
            "name after ':'); write a torchvision name (resnet18, resnet18:IMAGENET1K_V1), "
            "timm:NAME, module:function, path/to/file.py:function or builtin:digits-cnn"
        )

    @property
    def canonical(self) -> str:
        """The spec as run.json records it: a file path made absolute so later commands find it anywhere."""
        if self.kind == "file":
            path, _, func = self.arch.rpartition(":")
            return f"{Path(path).expanduser().resolve()}:{func}"
        if self.kind == "timm":
            return f"timm:{self.arch}"
        if self.kind == "builtin":
            return f"builtin:{self.arch}" + (f":{self.options}" if self.options else "")
        if self.kind == "hf":
            return f"hf:{Path(self.arch).expanduser().resolve()}" + (f":{self.options}" if self.options else "")
        return self.arch + (f":{self.weights}" if self.weights else "")

    @property
    def from_directory(self) -> bool:
        """Whether the model's config, weights and tokenizer come from a directory (Hugging Face's, the built-in MiniLM)."""
        from ..modalities.models import directory_side

        return self.kind == "hf" or (self.kind == "builtin" and self.arch in directory_side().DIRECTORY_BUILTINS)

    @property
    def input_kind(self) -> str:
        """The kind of data the model takes (:data:`~xferdiag.modalities.kinds.KINDS`): that of the modality whose
        model side builds it (token ids for a directory model, table rows for the built-in tabular MLP), images otherwise."""
        from ..modalities.models import builtin_side, directory_side

        side = directory_side() if self.from_directory else builtin_side(self.arch) if self.kind == "builtin" else None
        return side.NAME if side is not None else IMAGE

    def pretrained_model(self) -> nn.Module | None:
        """The model with the weights its spec names, without a checkpoint: a text model's directory, torchvision's
        NAME:WEIGHTS; None where the spec names none (random weights)."""
        if self.from_directory:
            return self.directory_classifier(pretrained=True)
        return self.download_weights() if self.weights else None

    @property
    def ships_weights(self) -> bool:
        """Whether the spec names a built-in whose pretrained weights a package ships (``builtin:efficientnet-lite0``;
        not ``builtin:efficientnet-lite0:random``): every command then starts from those weights."""
        return self.kind == "builtin" and self.arch in SHIPPED_WEIGHTS and self.options != RANDOM

    def shipped_checkpoint(self) -> str:
        """The file of those weights; the one-line error saying what to install when their package is missing."""
        return SHIPPED_WEIGHTS[self.arch]()

    def directory_classifier(self, pretrained: bool, num_classes: int | None = None) -> nn.Module:
        """A directory model's classifier with the directory's weights (``pretrained``) or random ones."""
        from ..modalities.models import directory_side

        return directory_side().directory_classifier(self, pretrained, num_classes)

    def build_classifier(self, num_classes: int | None = None) -> nn.Module:
        """The original architecture with random weights (``num_classes`` outputs when given and accepted)."""
        return strip_auxiliary(self._build(num_classes))

    def _build(self, num_classes: int | None) -> nn.Module:
        kwargs = {} if num_classes is None else {"num_classes": num_classes}
        if self.from_directory:
            return self.directory_classifier(pretrained=False, num_classes=num_classes)
        if self.kind == "builtin":
            return build_builtin(self.arch, self.options, **kwargs)
        if self.kind == "timm":
            return _timm_model(self.arch, **kwargs)
        if self.kind in ("callable", "file"):
            return _call_user_function(self.arch, self._user_function(), kwargs)
        import torchvision.models as tvm

        if self.arch in ("googlenet", "inception_v3"):  # today's initialisation, without torchvision's FutureWarning
            kwargs["init_weights"] = True
        return tvm.get_model(self.arch, weights=None, **kwargs)

    def _user_function(self):
        target, _, func_name = self.arch.rpartition(":")
        module = _import_file(target) if self.kind == "file" else _import_module(target, self.arch)
        func = getattr(module, func_name, None)
        if not callable(func):
            raise ModelError(f"model {self.arch!r}: {target} has no function {func_name!r}")
        return func

    def preprocessing(self) -> Preprocessing | None:
        """The preprocessing the architecture's weights expect, where torchvision or timm records it.

        For torchvision the named weights' own transforms (or the architecture's default weights':
        reading their metadata downloads nothing); for timm the model's ``pretrained_cfg``.
        """
        if self.kind == "torchvision":
            import torchvision.models as tvm

            enum = tvm.get_model_weights(self.arch)
            weights = enum[self.weights] if self.weights in enum.__members__ else enum.DEFAULT
            t = weights.transforms()
            size = t.crop_size[0] if isinstance(t.crop_size, (list, tuple)) else t.crop_size
            return Preprocessing(int(size), tuple(t.mean), tuple(t.std), f"torchvision {weights}")
        if self.kind == "timm":
            from timm.models import get_pretrained_cfg

            cfg = get_pretrained_cfg(self.arch)
            if cfg is None:
                return None
            return Preprocessing(int(cfg.input_size[-1]), tuple(cfg.mean), tuple(cfg.std), f"timm pretrained_cfg of {self.arch}")
        return None

    def download_weights(self) -> nn.Module:
        """The torchvision classifier with its named weights (needs the network or a cached file)."""
        import torchvision.models as tvm

        if self.kind != "torchvision":
            raise ModelError(f"model {self.canonical!r}: named weights exist only for torchvision architectures; "
                             "pass a local state_dict with --pretrained-checkpoint FILE")
        try:
            weights = tvm.get_model_weights(self.arch)[self.weights]
        except KeyError:
            options = ", ".join(w.name for w in tvm.get_model_weights(self.arch))
            raise ModelError(f"weights {self.weights!r} do not exist for {self.arch}; choose one of {options}") from None
        try:
            with contextlib.redirect_stderr(io.StringIO()):  # torch.hub's "Downloading ..." line
                return strip_auxiliary(tvm.get_model(self.arch, weights=weights))
        except Exception as exc:  # URLError, socket errors, HTTP errors
            raise ModelError(
                f"{self.arch}:{self.weights} needs a download that failed ({type(exc).__name__}); "
                "offline, pass a local state_dict with --pretrained-checkpoint FILE"
            ) from None


def _timm_model(name: str, **kwargs) -> nn.Module:
    try:
        import timm
    except ImportError:
        raise ModelError(f"model 'timm:{name}': timm is not installed; pip install 'xferdiag[zoo]' (or timm)") from None
    if name not in timm.list_models():
        close = timm.list_models(f"*{name[:8]}*")[:5]
        raise ModelError(f"model 'timm:{name}': not a timm architecture" + (f"; similar: {', '.join(close)}" if close else ""))
    return timm.create_model(name, pretrained=False, **kwargs)


def _import_module(name: str, spec: str):
    """Import ``name`` with the working directory on the path, as ``python -m`` would have it."""
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ModelError(f"model {spec!r}: cannot import module {name!r} from the working directory or sys.path "
                         f"({exc}); for a file elsewhere write path/to/file.py:function") from None
    finally:
        if added:
            sys.path.remove(cwd)


def _import_file(path_text: str):
    """Load a user's ``file.py`` under a name of its own (its path hashed), once per process."""
    path = Path(path_text).expanduser().resolve()
    if not path.is_file():
        raise ModelError(f"model file {path_text!r}: not found")
    name = "xferdiag_user_" + path.stem + "_" + hashlib.sha1(str(path).encode()).hexdigest()[:8]
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except ImportError as exc:
        del sys.modules[name]
        raise ModelError(f"model file {path_text!r}: an import inside it failed ({exc})") from None
    return module


def _call_user_function(spec: str, func, kwargs: dict) -> nn.Module:
    """Call the user's builder, passing ``num_classes`` only when its signature takes it."""
    try:
        params = inspect.signature(func).parameters
        takes = "num_classes" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
    except (TypeError, ValueError):  # builtins without a signature
        takes = False
    model = func(**kwargs) if kwargs and takes else func()
    if not isinstance(model, nn.Module):
        raise ModelError(f"model {spec!r}: the function returned {type(model).__name__}, not a torch.nn.Module")
    return model
