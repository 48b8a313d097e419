"""A run's settings completed from its data before it starts: the label and text columns written into a CSV/JSONL
data spec, the table MLP's width read from the table."""

from __future__ import annotations

from .table.mlp import model_for_data
from .text.load import with_columns


def resolve_config(config, label_column: str | None = None, text_column: str | None = None):
    """What a table or text run needs before it starts: ``label_column`` (and a text file's
    ``text_column``) in the CSV/JSONL data specs, the MLP's width.

    Any other config comes back unchanged, so every entry point (CLI, API, audit) can call it.
    """
    if label_column or text_column:
        config = config.replace(data=with_columns(config.data, label_column, text_column),
                                source_data=config.source_data and with_columns(config.source_data, label_column, text_column))
    return config.replace(model=model_for_data(config.model, config.data))
