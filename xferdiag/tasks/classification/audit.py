"""Classification made ready for ``audit``: the fine-tuned classifier read in any form it comes in (a whole
classifier's state_dict, xferdiag's ``backbone.*``/``head.*``, a Hugging Face directory; see
:mod:`xferdiag.models.finetuned`), the pretrained weights it started from, the input it takes and the
target's splits, as ``finetune`` would prepare them (see :class:`..prepared.Audited`)."""

from __future__ import annotations

from pathlib import Path

from ...config import RunConfig
from ...errors import ConfigError
from ...modalities.loading import load_domain
from ...modalities.models import model_for_data
from ...models import ModelSource, load_finetuned, load_finetuned_directory, load_pretrained_classifier, own_head_source
from ..base import Task
from ..prepared import Audited, Prepared
from .prepare import model_input, prepared_point, say_input, target_splits, warn_left_out


def prepare_audit(task: Task, config: RunConfig, checkpoint: str | Path, *, quiet: bool = False) -> Audited:
    """The classifier at ``checkpoint`` (architecture, pretrained weights and data from ``config``), checked
    before anything is written."""
    config = config.replace(model=model_for_data(config.model, config.data))
    source = ModelSource.parse(config.model)
    hf_directory = Path(checkpoint).is_dir()
    if hf_directory:
        source = own_head_source(source, checkpoint)
    pretrained = load_pretrained_classifier(source, config.pretrained_checkpoint)
    if pretrained is None:
        raise ConfigError(f"audit: give the weights {config.model!r} started from with --pretrained-checkpoint FILE "
                          "or NAME:WEIGHTS; the analysis compares the fine-tuned model with them")
    domain = load_domain(config.data)
    source_domain = load_domain(config.source_data) if config.source_data else None
    spec, choice = model_input(config, source, pretrained, domain, source_domain)
    config = config.replace(model=source.canonical).with_absolute_paths()
    [splits] = target_splits(config, domain, spec, config.shots)
    warn_left_out(splits, spec)
    if hf_directory:
        model, form = load_finetuned_directory(checkpoint, source, domain.classes, input_spec=spec)
    else:
        model, form = load_finetuned(checkpoint, source, len(domain.classes), input_spec=spec, head_hidden=config.head_hidden,
                                     head_dropout=config.head_dropout)
    say_input(spec, choice, config, quiet)  # after the checkpoint loads: a wrong one ends in its one line
    point = prepared_point(config, source, pretrained, spec, splits)
    prepared = Prepared(task, config, spec, [point], lambda: None,
                        source_size=len(source_domain) if source_domain is not None else None)
    return Audited(prepared, model, form)
