"""Where README's ``xferdiag.models.tabular.TabularMLP`` is still found: the table modality's MLP lives in
:mod:`xferdiag.modalities.table.mlp`."""

from ..modalities.table.mlp import TabularMLP

__all__ = ["TabularMLP"]
