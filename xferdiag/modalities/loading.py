"""Which modality a data spec is: each modality's loader is asked in turn whether the spec is its own (a
:class:`~xferdiag.data.Domain`) or not (None); registered plug-ins' loaders first, then text's and table's; images take whatever is left."""

from __future__ import annotations

from collections.abc import Callable

from ..data import Domain
from .descriptor import discover
from .image.load import load as load_images
from .table.load import load as load_table
from .text.load import load as load_texts

LOADERS: dict[str, Callable[[str], Domain | None]] = {}
"""The registered modality plug-ins' loaders by kind (:func:`xferdiag.modalities.registry.register_modality`): each
is asked first whether a data spec is its own."""


def load_domain(spec: str) -> Domain:
    """``digits:<name>`` or ``cancer:<name>`` (built-in), ``fashion-mnist[:train]`` (Debian's package),
    text (``bbc-news``, ``PATH.csv``/``PATH.jsonl`` with a text column, a folder of ``.txt`` class folders),
    a folder of class folders, a ``.npz`` file (images, or a table when ``x`` is 2-D), or a CSV table
    (``PATH.csv`` or ``PATH.csv:LABEL_COLUMN``); before them, data a registered modality plug-in claims."""
    discover()  # the installed packages' modality plug-ins claim their data first too
    for loader in (*LOADERS.values(), load_texts, load_table):  # a CSV with a text column is text, any other a table
        if (domain := loader(spec)) is not None:
            return domain
    return load_images(spec)  # whatever is left: built-in images, .npz images, a folder of class folders
