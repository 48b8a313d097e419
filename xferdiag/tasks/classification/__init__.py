"""Classification: one label per example, cross-entropy, accuracy and macro-F1."""

from .metrics import Evaluation, evaluate_logits
from .task import ClassificationTask

__all__ = ["ClassificationTask", "Evaluation", "evaluate_logits"]
