"""Classification metrics from logits: loss, accuracy, macro-F1, predictions and probabilities."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.metrics import f1_score


@dataclass
class Evaluation:
    loss: float
    accuracy: float
    macro_f1: float
    labels: np.ndarray
    predictions: np.ndarray
    probabilities: np.ndarray

    selection_name = "validation loss"

    @property
    def selection(self) -> float:
        """The lowest validation loss picks the best epoch."""
        return self.loss

    def summary(self) -> dict[str, float]:
        return {"accuracy": self.accuracy, "macro_f1": self.macro_f1, "loss": self.loss}

    def history(self) -> dict[str, float]:
        return {"val_loss": self.loss, "val_accuracy": self.accuracy}

    def record(self) -> dict:
        """What the seed keeps of its test split: per-example labels, predictions and probabilities."""
        return {"predictions": {"labels": self.labels, "predictions": self.predictions, "probabilities": self.probabilities}}

    def postfix(self) -> dict[str, str]:
        return {"val_acc": f"{self.accuracy:.3f}", "val_loss": f"{self.loss:.3f}"}


def evaluate_logits(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> Evaluation:
    logits = logits.float()
    loss = torch.nn.functional.cross_entropy(logits, labels).item()
    probs = logits.softmax(dim=1)
    preds = probs.argmax(dim=1)
    y, p = labels.numpy(), preds.numpy()
    return Evaluation(
        loss=loss,
        accuracy=float((y == p).mean()),
        macro_f1=float(f1_score(y, p, labels=np.arange(num_classes), average="macro", zero_division=0)),
        labels=y.astype(np.int64),
        predictions=p.astype(np.int64),
        probabilities=probs.numpy().astype(np.float32),
    )
