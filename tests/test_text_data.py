"""Text data: CSV / JSONL / .txt folders as a Domain of kind text, their splits, shots and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.test_cli_errors import assert_user_error, xferdiag
from xferdiag.data import split_target
from xferdiag.errors import DataError
from xferdiag.modalities.loading import load_domain
from xferdiag.modalities.text.load import load_text_file, with_columns


def write_csv(path, rows, header=("text", "label")):
    import csv

    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def corpus_rows(n_per_class=10, classes=("neg", "pos")):
    return [(f"text number {i} about {c}", c) for c in classes for i in range(n_per_class)]


def test_csv_with_text_column_is_a_text_domain_with_sorted_classes(tmp_path):
    path = write_csv(tmp_path / "reviews.csv", [("good film", "pos"), ("bad, long film", "neg"), ("fine", "pos")])
    domain = load_domain(str(path))
    assert domain.kind == "text"
    assert domain.classes == ["neg", "pos"]
    assert domain.kind == "text" and domain.payload.texts == ["good film", "bad, long film", "fine"]
    assert domain.labels.tolist() == [1, 0, 1]
    assert domain.split is None


def test_csv_without_text_column_is_still_a_table(tmp_path):
    path = write_csv(tmp_path / "t.csv", [("1.5", "0"), ("2.5", "1")], header=("x", "label"))
    assert load_domain(str(path)).kind == "table"


def test_jsonl_with_named_columns_and_split(tmp_path):
    rows = [{"body": f"doc {i}", "topic": "a" if i % 2 else "b", "split": "test" if i < 4 else "train"} for i in range(12)]
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    spec = with_columns(str(path), "topic", "body")
    assert spec == f"{path}:topic:body"
    domain = load_domain(spec)
    assert domain.classes == ["a", "b"]
    assert domain.payload.texts[5] == "doc 5"
    assert (domain.split == "test").sum() == 4
    splits = split_target(domain, 0.25, 0.25, 0, "all")
    assert set(splits.indices["test"]) == {0, 1, 2, 3}  # the given split is kept
    assert len(splits.indices["val"]) > 0 and not set(splits.indices["val"]) & set(splits.indices["train"])


def test_integer_labels_sort_numerically(tmp_path):
    path = write_csv(tmp_path / "n.csv", [("a", "10"), ("b", "2"), ("c", "2")])
    assert load_text_file(path).classes == ["2", "10"]


def test_text_folder_and_presplit_folder(tmp_path):
    for cls in ("sport", "tech"):
        (tmp_path / "flat" / cls).mkdir(parents=True)
        for i in range(3):
            (tmp_path / "flat" / cls / f"{i}.txt").write_text(f"{cls} story {i}", encoding="utf-8")
        for split in ("train", "test"):
            (tmp_path / "split" / split / cls).mkdir(parents=True)
            (tmp_path / "split" / split / cls / "a.txt").write_text(f"{split} {cls}", encoding="utf-8")
    flat = load_domain(str(tmp_path / "flat"))
    assert flat.kind == "text" and flat.classes == ["sport", "tech"] and len(flat) == 6
    assert flat.payload.texts[3] == "tech story 0"
    presplit = load_domain(str(tmp_path / "split"))
    assert presplit.split.tolist() == ["train", "train", "test", "test"]


def test_seeded_stratified_split_and_shots_as_for_images(tmp_path):
    path = write_csv(tmp_path / "c.csv", corpus_rows(20, ("a", "b", "c")))
    domain = load_domain(str(path))
    first = split_target(domain, 0.2, 0.3, 7, 4)
    again = split_target(domain, 0.2, 0.3, 7, 4)
    other = split_target(domain, 0.2, 0.3, 8, 4)
    assert all(np.array_equal(first.indices[s], again.indices[s]) for s in ("train", "val", "test"))
    assert not np.array_equal(first.indices["test"], other.indices["test"])
    assert np.bincount(domain.labels[first.indices["train"]]).tolist() == [4, 4, 4]
    assert np.bincount(domain.labels[first.indices["test"]]).tolist() == [6, 6, 6]


@pytest.mark.parametrize("case, needle", [
    ("missing text column", "no column 'text'"),
    ("missing label column", "no column 'label'"),
    ("empty text", "row 3 has an empty text"),
    ("not utf-8", "not UTF-8"),
    ("one class", "at least 2"),
])
def test_bad_text_files_fail_in_one_line_naming_the_problem(tmp_path, case, needle):
    path = tmp_path / "bad.jsonl"
    if case == "missing text column":
        path.write_text('{"body": "x", "label": "a"}\n', encoding="utf-8")
    elif case == "missing label column":
        path.write_text('{"text": "x", "class": "a"}\n', encoding="utf-8")
    elif case == "empty text":
        path.write_text('{"text": "x", "label": "a"}\n{"text": "y", "label": "b"}\n{"text": "  ", "label": "b"}\n', encoding="utf-8")
    elif case == "not utf-8":
        path.write_bytes('{"text": "caf\u00e9", "label": "a"}\n'.encode("latin-1"))
    else:
        path.write_text('{"text": "x", "label": "a"}\n{"text": "y", "label": "a"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=needle) as info:
        load_domain(str(path))
    assert "\n" not in str(info.value)


def test_folder_errors(tmp_path):
    from xferdiag.modalities.text.load import load_text_folder

    with pytest.raises(DataError, match="data folder not found"):
        load_text_folder(tmp_path / "nope")
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="no .txt files"):
        load_text_folder(tmp_path / "empty")
    bad = tmp_path / "bad"
    (bad / "a").mkdir(parents=True)
    (bad / "b").mkdir()
    (bad / "a" / "1.txt").write_text("fine", encoding="utf-8")
    (bad / "b" / "2.txt").write_bytes(b"\xff\xfe\xfa broken")
    with pytest.raises(DataError, match=r"2\.txt: not UTF-8"):
        load_domain(str(bad))
    (bad / "b" / "2.txt").write_text("   ", encoding="utf-8")
    with pytest.raises(DataError, match=r"2\.txt: empty text"):
        load_domain(str(bad))


@pytest.mark.slow
def test_cli_bad_text_data_exits_2_and_writes_nothing(tmp_path, digits_checkpoint):
    csv_path = write_csv(tmp_path / "reviews.csv", corpus_rows(), header=("body", "label"))
    common = ["--model", "builtin:digits-cnn", "--pretrained-checkpoint", str(digits_checkpoint), "--epochs", "1",
              "--seeds", "1", "--quiet"]
    cases = [
        (["--data", str(tmp_path / "reviews.jsonl")], "file not found"),
        (["--data", str(csv_path), "--text-column", "content"], "no column 'content'"),
        (["--data", str(csv_path), "--text-column", "body"], "20 texts, but the model takes images"),
    ]
    for k, (args, needle) in enumerate(cases):
        out = tmp_path / f"out{k}"
        assert_user_error(xferdiag("finetune", *args, *common, "--out", str(out), cwd=tmp_path), needle)
        assert not out.exists()
