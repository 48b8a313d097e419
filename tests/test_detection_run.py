"""Detection through the command line, as a user runs it: a COCO folder in, a run directory out whose every
number anyone can recompute from its stored COCO files with pycocotools."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torchvision

from benchmarks.coco_reference import coco_eval, coco_per_class_ap
from tests.cli_helpers import xferdiag
from xferdiag.tasks.detection.data import make_scenes, write_coco


@pytest.fixture(scope="module")
def detection_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("det")
    write_coco(make_scenes(24, seed=3, kinds=("face", "digit")), root / "scenes")
    torch.manual_seed(0)
    torch.save(torchvision.models.mobilenet_v2().state_dict(), root / "mnv2.pt")
    done = xferdiag("finetune", "--data", root / "scenes", "--model", "fasterrcnn", "--backbone", "mobilenet_v2",
                    "--pretrained-checkpoint", root / "mnv2.pt", "--epochs", "1", "--seeds", "2", "--batch-size", "4",
                    "--out", root / "run", cwd=root, timeout=600)
    assert done.returncode == 0, done.stderr
    return root / "run", done.stderr


@pytest.mark.slow
def test_a_coco_folder_trains_both_arms_into_a_standard_run_directory(detection_run):
    run, stderr = detection_run
    assert "input: the detector's own transform" in stderr
    meta = json.loads((run / "run.json").read_text())
    assert meta["config"]["task"] == "detection" and meta["model"]["transfer"]["level"] == "backbone"
    data = json.loads((run / "data.json").read_text())
    assert data["kind"] == "image" and data["classes"] == ["face", "digit"] and set(data["card"]) == {"train", "val", "test"}
    verdict = json.loads((run / "verdict.json").read_text())
    assert verdict["metric"] == "map" and verdict["seeds"] == [0, 1] and verdict["verdict"] in ("positive", "negative", "inconclusive")
    assert verdict["method"].startswith("seeds x test images")
    header = (run / "arms/scratch/seed-1/history.csv").read_text().splitlines()[0]
    assert header == "epoch,phase,train_loss,val_map,val_ap50,lr,seconds"


@pytest.mark.slow
def test_stored_predictions_reproduce_every_metric_with_pycocotools(detection_run):
    pytest.importorskip("pycocotools")
    run, _ = detection_run
    ground_truth = json.loads((run / "test_annotations.json").read_text())
    for arm in ("transfer", "scratch"):
        results = json.loads((run / f"arms/{arm}/seed-0/detections.json").read_text())
        metrics = json.loads((run / f"arms/{arm}/seed-0/metrics.json").read_text())["test"]
        if not results:  # pycocotools cannot load an empty result list; the evaluator then has no AP to give
            assert metrics["map"] in (0.0, None)
            continue
        reference = coco_eval(ground_truth, results)
        assert metrics["map"] == pytest.approx(reference.stats[0], abs=1e-6)
        assert metrics["ap50"] == pytest.approx(reference.stats[1], abs=1e-6)
        assert metrics["ap75"] == pytest.approx(reference.stats[2], abs=1e-6)
        per_class = [metrics["per_class_ap"][str(c["id"])] for c in ground_truth["categories"]]
        np.testing.assert_allclose(np.array(per_class, dtype=float), coco_per_class_ap(reference), atol=1e-6)


def test_a_bad_annotation_ends_in_one_line_and_writes_nothing(tmp_path):
    scenes = make_scenes(6, seed=0)
    folder = write_coco(scenes, tmp_path / "scenes")
    instances = next((folder / "annotations").glob("*.json"))
    doc = json.loads(instances.read_text())
    doc["annotations"][0]["bbox"][2] = 0.0  # a zero-width box
    instances.write_text(json.dumps(doc))
    done = xferdiag("finetune", "--data", folder, "--model", "fasterrcnn", "--backbone", "mobilenet_v2",
                    "--pretrained-checkpoint", tmp_path / "none.pt", "--out", tmp_path / "run", cwd=tmp_path)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert instances.name in done.stderr and "zero or negative area" in done.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_stage_detection_lacks_ends_in_one_line(detection_run):
    """A strategy sweep (several transfer arms in one run) is the stage detection lacks: one line, nothing written."""
    run, _ = detection_run
    root = run.parent
    done = xferdiag("finetune", "--data", root / "scenes", "--model", "fasterrcnn", "--backbone", "mobilenet_v2",
                    "--pretrained-checkpoint", root / "mnv2.pt", "--strategy", "linear-probe,full", "--out", root / "sweep",
                    cwd=root)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "not available for detection runs yet" in done.stderr
    assert not (root / "sweep").exists()


@pytest.mark.slow
def test_analyze_writes_the_box_and_image_level_shift_of_a_detection_run(detection_run):
    """Without --source-data the training split is compared with the test split; shift.json and transferability.json
    (the run's pretrained backbone scored on its boxes, beside random weights) are written."""
    run, _ = detection_run
    done = xferdiag("analyze", run, "--layers", "features.3", cwd=run.parent)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "--layers" in done.stderr, done.stderr
    done = xferdiag("analyze", run, "--permutations", "50", "--quiet", cwd=run.parent)
    assert done.returncode == 0, done.stderr
    shift = json.loads((run / "analysis/shift.json").read_text())
    data = json.loads((run / "data.json").read_text())
    rows = {row["name"]: row for row in shift["boxes"]["statistics"]}
    assert list(rows) == ["size", "aspect_ratio", "centre_x", "centre_y", "boxes_per_image"] and "training split" in shift["compared"]
    assert rows["boxes_per_image"]["n_source"] == data["card"]["train"]["images"] == shift["n_source"]
    assert rows["boxes_per_image"]["n_target"] == data["card"]["test"]["images"] == shift["n_target"]
    assert 0 <= shift["c2st"]["accuracy"] <= 1 and shift["interpretation"][0].startswith("Compared: the target data's training split")
    assert sorted(p.name for p in (run / "analysis").iterdir()) == ["shift.json", "transferability.json"]
    scores = json.loads((run / "analysis/transferability.json").read_text())
    assert scores["n"] == data["card"]["train"]["images"] and scores["reference"]["model"] == "random initialisation"


def test_rank_of_detection_data_ends_in_one_line(tmp_path):
    folder = write_coco(make_scenes(4, seed=1), tmp_path / "scenes")
    done = xferdiag("rank", "--data", folder, "--candidates", "mobilenet_v2", "--out", "r", cwd=tmp_path)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "--model: rank on detection data puts each candidate backbone under a detector" in done.stderr
    assert "digits-cnn" not in done.stderr  # the default, which the user did not give
    assert not (tmp_path / "r").exists()
