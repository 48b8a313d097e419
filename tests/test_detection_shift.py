"""Detection shift: box statistics (KS per statistic, Benjamini-Hochberg across them) and image-level shift of the
pretrained backbone's pooled features, against known answers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torchvision

from xferdiag.config import RunConfig
from xferdiag.errors import DataError, InputError
from xferdiag.tasks.detection.analysis import analyze
from xferdiag.tasks.detection.data import load_detection, make_scenes, write_coco
from xferdiag.tasks.detection.models import build_detection_model
from xferdiag.tasks.detection.settings import settings_for
from xferdiag.tasks.detection.shift import BOX_STATISTICS, box_statistics, box_table, image_shift, pooled_features


def _scaled(data, factor: float):
    """The same scenes with every box scaled by ``factor`` about its centre (centres and aspect ratios kept)."""
    images = []
    for img in data.images:
        centre = (img.boxes[:, :2] + img.boxes[:, 2:]) / 2
        half = (img.boxes[:, 2:] - img.boxes[:, :2]) / 2 * factor
        images.append(dataclasses.replace(img, boxes=np.concatenate([centre - half, centre + half], axis=1).astype(np.float32)))
    return dataclasses.replace(data, images=tuple(images))


def test_a_box_table_holds_hand_computed_values():
    data = make_scenes(1, seed=0, size=64, max_objects=1, empty_fraction=0.0)
    img = data.images[0]
    img = dataclasses.replace(img, boxes=np.array([[8, 16, 40, 32]], np.float32), labels=np.array([0]), iscrowd=np.array([False]))
    table = box_table(dataclasses.replace(data, images=(img,)))
    assert table["size"] == pytest.approx([np.sqrt(32 * 16 / 64**2)])
    assert table["aspect_ratio"] == pytest.approx([2.0])
    assert table["centre_x"] == pytest.approx([24 / 64]) and table["centre_y"] == pytest.approx([24 / 64])
    assert table["boxes_per_image"].tolist() == [1.0]


def test_identical_box_sets_shift_in_no_statistic():
    data = make_scenes(30, seed=0, size=64)
    result = box_statistics(box_table(data), box_table(data))
    assert [row["name"] for row in result["statistics"]] == list(BOX_STATISTICS)
    assert all(row["p_value"] == pytest.approx(1.0) and not row["shifted"] for row in result["statistics"])


def test_boxes_scaled_twofold_shift_in_size_only():
    data = make_scenes(40, seed=0, size=96, scale=(0.15, 0.4))
    rows = {row["name"]: row for row in box_statistics(box_table(_scaled(data, 0.5)), box_table(data))["statistics"]}
    assert rows["size"]["shifted"] and rows["size"]["p_adjusted"] < 1e-10
    assert rows["size"]["median_target"] == pytest.approx(2 * rows["size"]["median_source"], rel=1e-6)
    assert not any(rows[name]["shifted"] for name in ("aspect_ratio", "centre_x", "centre_y", "boxes_per_image"))
    assert rows["centre_x"]["p_value"] == pytest.approx(1.0) and rows["boxes_per_image"]["ks_statistic"] == 0.0


def test_box_statistics_without_boxes_end_in_one_line():
    data = make_scenes(3, seed=0, size=64, empty_fraction=1.0)
    with pytest.raises(DataError, match="the source images hold no boxes"):
        box_statistics(box_table(data), box_table(make_scenes(10, seed=0, size=64)))


def test_other_backgrounds_raise_the_image_level_domain_classifier_accuracy(one_thread):
    """The issue's known answer: the same objects pasted on textures instead of photos are told apart from photo scenes
    by the pooled features far better than two draws of photo scenes are (a seeded random MobileNetV2 body)."""
    torch.manual_seed(0)
    model = build_detection_model("fasterrcnn", 1, backbone="mobilenet_v2", norm="frozen", settings=settings_for("cpu", 64))
    photos, other_photos, textures = (make_scenes(40, seed=s, size=64, backgrounds=b)
                                      for s, b in ((0, "photos"), (1, "photos"), (2, "textures")))
    base, same, moved = (pooled_features(model, d, range(40)) for d in (photos, other_photos, textures))
    assert base.shape == (40, 1280) and np.isfinite(base).all()
    same_kind, other_kind = image_shift(base, same, n_permutations=100), image_shift(base, moved, n_permutations=100)
    assert other_kind["c2st"]["accuracy"] >= same_kind["c2st"]["accuracy"] + 0.15
    assert other_kind["proxy_a_distance"]["value"] > same_kind["proxy_a_distance"]["value"]


def test_the_analysis_of_a_run_compares_its_source_with_its_target_and_else_its_splits(tmp_path, one_thread):
    """A run's configuration: with --source-data on other backgrounds the image level shifts and the boxes do not
    (the same objects at the same scales); without it the training split is compared with the test split."""
    write_coco(make_scenes(24, seed=0, size=64), tmp_path / "target")
    write_coco(make_scenes(24, seed=1, size=64, backgrounds="textures"), tmp_path / "source")
    torch.manual_seed(0)
    torch.save(torchvision.models.mobilenet_v2().state_dict(), tmp_path / "mnv2.pt")
    config = RunConfig(data=str(tmp_path / "target"), model="fasterrcnn", backbone="mobilenet_v2",
                       pretrained_checkpoint=str(tmp_path / "mnv2.pt"), source_data=str(tmp_path / "source"))
    result = analyze(config, n_permutations=50)
    assert result["compared"].startswith("source data") and result["n_source"] == result["n_target"] == 24
    assert result["c2st"]["accuracy"] >= 0.75 and result["mmd"]["p_value"] < 0.05
    assert not any(row["shifted"] for row in result["boxes"]["statistics"]) and result["label_shift"]["total_variation"] < 0.2
    objects = result["instance"]["objects"]  # the instance level, over the same images, one row per ground-truth box
    assert result["instance"]["stride"] == 8 and objects["n_source_images"] <= 24 and objects["n_source"] == len(box_table(
        load_detection(str(tmp_path / "source")))["size"])
    own = analyze(dataclasses.replace(config, source_data=None), n_permutations=50)
    per_image = own["boxes"]["statistics"][-1]  # boxes per image: one value per image compared, the validation split left out
    assert "training split" in own["compared"] and (per_image["n_source"], per_image["n_target"]) == (own["n_source"], own["n_target"])
    assert per_image["n_source"] + per_image["n_target"] < 24
    with pytest.raises(InputError, match="--layers"):
        analyze(config, layers=["features.3"])
