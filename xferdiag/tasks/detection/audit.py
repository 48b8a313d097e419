"""Detection made ready for ``audit``: a detector fine-tuned elsewhere, read as other tools save it (a state_dict,
a torchvision-references training checkpoint ``{"model": ..., "optimizer": ..., "epoch": ...}``, a DDP
state_dict with ``module.`` prefixes; see :mod:`.checkpoints`), into the architecture ``--model`` (and
``--backbone``) build, beside the run ``finetune`` would prepare: the same data, splits, pretrained weights
(the backbone or source detector it started from) and scratch arm (see :class:`..prepared.Audited`)."""

from __future__ import annotations

from pathlib import Path

from ...config import RunConfig
from ..base import Task
from ..prepared import Audited
from .checkpoints import load_finetuned
from .models import build_detection_model
from .prepare import prepare
from .settings import settings_for


def prepare_audit(task: Task, config: RunConfig, checkpoint: str | Path, *, quiet: bool = False) -> Audited:
    """The detector at ``checkpoint``, loaded whole (its class predictor too) and evaluated at the run's settings
    (``--image-size`` sets the shorter side it sees); a file that does not fit ends in one line."""
    prepared = prepare(task, config, quiet=quiet)
    config = prepared.config
    model = build_detection_model(config.model, prepared.points[-1].data.num_classes, backbone=config.backbone,
                                  norm=config.detector_norm, settings=settings_for(config.detector_scale, config.image_size),
                                  fpn_channels=config.fpn_channels)
    form = load_finetuned(model, checkpoint)
    return Audited(prepared, model, form)
