"""A toy second task: multi-label classification with label sets of varying size, shaped like detection.

It exercises what detection needs of the task seam and classification does not: a model that returns a
dict of losses in train mode, targets of varying length per example (a list collate), a score that is
not a mean over examples (mean average precision over labels), and a predictions file of its own
(``label_scores``, not ``predictions``). Its data are a ``*.labelsets.json`` file (:mod:`.data`).
"""

from .data import LabelSets, label_sets, write_label_sets
from .model import MultiLabelNet
from .task import MultiLabelTask

__all__ = ["LabelSets", "MultiLabelNet", "MultiLabelTask", "label_sets", "write_label_sets"]
