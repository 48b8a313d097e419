"""One vocabulary of kinds of data: the modality owns its domain's payload and its model's input kind, the
run directory reads older spellings once, and the report and the commands ask the modality's descriptor."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest
import torch

from xferdiag.config import RunConfig
from xferdiag.data import Domain, InputSpec
from xferdiag.errors import ConfigError, DataError
from xferdiag.modalities.descriptor import DESCRIPTORS, KINDS, describe_modality
from xferdiag.modalities.image.data import ImageFiles, ImageTensors
from xferdiag.modalities.models import input_example, transfer_model_class
from xferdiag.modalities.registry import MODALITIES, check_options, keep_whole, modality_of
from xferdiag.modalities.table.load import TableRows
from xferdiag.modalities.text.load import Texts
from xferdiag.modalities.text.model import TextClassifier
from xferdiag.models import TransferModel
from xferdiag.report import render_report
from xferdiag.rundir import RunDir, read_data, read_json, write_json
from xferdiag.rundir.kinds import input_kind, kind_of, with_kind
from xferdiag.rundir.records import input_from_record, input_record
from xferdiag.testing import write_full_run

IMAGES = Domain("imgs", ["a", "b"], np.array([0, 1, 0]), ImageTensors(torch.zeros(3, 1, 8, 6)))
TABLE = Domain("rows", ["a", "b"], np.array([0, 1]), TableRows(np.zeros((2, 4), np.float32), ["w", "x", "y", "z"]))
TEXTS = Domain("texts", ["a", "b"], np.array([0, 1]), Texts(["good", "bad"]))
IMAGE_SPEC = InputSpec(3, 16, (0.5,) * 3, (0.5,) * 3)
TABLE_SPEC = InputSpec(0, 4, (), (), kind="table")


def test_every_kind_has_one_plug_in_and_one_descriptor():
    assert KINDS == ("image", "table", "text") and set(KINDS) <= set(MODALITIES)  # plus any plug-in a test registered
    assert [modality_of(d).name for d in (IMAGES, TABLE, TEXTS)] == ["image", "table", "text"]
    assert [describe_modality(k).name for k in (*KINDS, None, "a newer kind")] == [*KINDS, "image", "image"]


@pytest.mark.parametrize("old, kind", [("digits", "image"), ("fashion-mnist", "image"), ("npz", "image"), ("folder", "image"),
                                       ("detection", "image"), ("tabular", "table"), ("table", "table"), ("text", "text"),
                                       (None, "image"), (7, "image")])
def test_old_spellings_read_as_todays_kind(old, kind):
    assert kind_of(old) == kind
    assert with_kind({"kind": old, "n": 1}) == {"kind": kind, "n": 1} and with_kind(None) is None


def test_old_input_records_name_their_kind_by_the_channel_sentinel():
    assert [input_kind({"channels": c}) for c in (-1, 0, 1, 3)] == ["text", "table", "image", "image"]
    old_table = {"channels": 0, "size": 4, "mean": [], "std": [], "origin": ""}
    assert input_from_record(old_table) == TABLE_SPEC
    assert input_from_record({"channels": -1, "size": 16, "mean": [], "std": []}) is None  # rebuilt with its tokenizer
    assert input_from_record(input_record(IMAGE_SPEC)) == IMAGE_SPEC
    assert input_record(TABLE_SPEC)["kind"] == "table" and input_from_record(input_record(TABLE_SPEC)) == TABLE_SPEC


def test_the_payload_describes_and_checks_the_data():
    assert IMAGES.image_sizes().tolist() == [[8, 6]] * 3 and IMAGES.native_side() is None
    assert TABLE.image_sizes() is None and TEXTS.native_side() is None
    assert [d.describe() for d in (IMAGES, TABLE, TEXTS)] == [
        "3 images of 1x8x6 (channels x height x width)", "a table of 2 rows x 4 features", "2 texts"]
    files = Domain("folder", ["a"], np.array([0]), ImageFiles([], None))
    assert files.describe() == "1 image files (decoded as gray or RGB)"
    IMAGES.check_fits(IMAGE_SPEC)  # gray images feed an RGB model by repetition
    with pytest.raises(DataError, match=r"^texts: 2 texts, but the model takes images$"):
        TEXTS.check_fits(IMAGE_SPEC)
    with pytest.raises(DataError, match=r"^imgs: 3 images of 1x8x6 .* but the model takes table rows$"):
        IMAGES.check_fits(TABLE_SPEC)
    with pytest.raises(DataError, match="cannot feed a model that takes 2-channel"):
        IMAGES.check_fits(InputSpec(2, 8, (0.0, 0.0), (1.0, 1.0)))
    row, label = TABLE.dataset(np.array([1]), TABLE_SPEC)[0]
    assert row.shape == (4,) and int(label) == 1


def test_the_model_side_of_each_kind():
    assert input_example(IMAGE_SPEC).shape == (2, 3, 16, 16) and input_example(TABLE_SPEC, 5).shape == (5, 4)
    assert transfer_model_class(IMAGE_SPEC) is TransferModel and transfer_model_class(TABLE_SPEC) is TransferModel
    assert transfer_model_class(InputSpec(0, 8, (), (), kind="text")) is TextClassifier


def test_long_inputs_are_a_rule_of_the_modality_that_cuts_them():
    assert keep_whole(IMAGES, [IMAGE_SPEC], truncate=False) is None and keep_whole(TABLE, [TABLE_SPEC], truncate=False) is None
    assert keep_whole(TEXTS, [InputSpec(0, 8, (), (), kind="text")], truncate=True) is None  # no tokenizer needed
    assert [describe_modality(k).cuts_long_inputs for k in KINDS] == [False, False, True]


OTHER_KINDS_OPTIONS = [  # (option, a non-default value, the kind that declares it, a kind that does not and its words)
    ("max_length", 32, "text", "image", "images"), ("truncate", False, "text", "table", "a table"),
    ("freeze_embeddings", True, "text", "image", "images"), ("group_by_length", True, "text", "table", "a table"),
    ("image_size", 64, "image", "text", "texts"), ("channels", 1, "image", "table", "a table"),
    ("mean", [0.5], "image", "text", "texts"), ("std", [0.5], "image", "table", "a table"),
    ("normalize", "none", "image", "text", "texts"),
]


@pytest.mark.parametrize(("option", "value", "owner", "kind", "words"), OTHER_KINDS_OPTIONS)
def test_an_option_of_another_kind_of_data_ends_in_one_line_naming_it_and_both_kinds(option, value, owner, kind, words):
    config = RunConfig(data="digits:plain", **{option: value})
    with pytest.raises(ConfigError) as raised:
        check_options(config, kind)
    assert str(raised.value) == f"{option}: applies to {owner} data; this run's data is {words}"
    check_options(config, owner)  # the kind that declares it takes it


def test_every_declared_option_is_checked_and_the_defaults_pass():
    declared = {option for kind in KINDS for option in describe_modality(kind).options}
    assert declared == {row[0] for row in OTHER_KINDS_OPTIONS}
    for kind in KINDS:
        check_options(RunConfig(data="digits:plain"), kind)


def test_an_option_two_kinds_declare_is_theirs_alike(monkeypatch):
    """image_size is an image option; a detection run is on images, so it takes it (its Prepared.spec is an image
    spec); a kind that shares an option by declaring it takes it too."""
    check_options(RunConfig(data="digits:plain", image_size=320), "image")
    shared = dataclasses.replace(describe_modality("table"), options=("image_size",))
    monkeypatch.setitem(DESCRIPTORS, "table", shared)
    check_options(RunConfig(data="digits:plain", image_size=320), "table")
    with pytest.raises(ConfigError, match=r"^image_size: applies to image data; this run's data is texts$"):
        check_options(RunConfig(data="digits:plain", image_size=320), "text")


def test_the_descriptor_words_for_the_report():
    assert describe_modality("image").input_words({"channels": 1, "size": 16}, True) == "1 channel, 16 × 16 pixels"
    assert describe_modality("table").input_words({"channels": 0, "size": 30}, True) == "table rows of 30 features"
    assert describe_modality("text").input_words({"size": 64}, False) == "token ids, 64 per text (longer texts left out)"
    assert describe_modality("text").input_words({}, False) is None


def test_a_run_written_with_the_old_spellings_renders_as_today(tmp_path):
    """data.json naming its loader and an image index without a kind (as before) render the same page as today's."""
    runs = {}
    for name, data_kind in (("old", "digits"), ("new", "image")):
        rd = RunDir(write_full_run(tmp_path / name))
        data, index = read_json(rd.data_json), read_json(rd.index_json)
        data["kind"] = data_kind
        if name == "old":
            index.pop("kind")
        write_json(rd.data_json, data)
        write_json(rd.index_json, index)
        assert read_data(rd)["kind"] == "image"
        runs[name] = render_report(rd.root, missing_ok=True).html
    old, new = (re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", "TIME", runs[k].replace(str(tmp_path / k), "RUN")) for k in ("old", "new"))
    assert "Grad-CAM" in old and old.count("<img") == new.count("<img") > 0
    assert json.dumps(old.split("<h2")[1:]) == json.dumps(new.split("<h2")[1:])
