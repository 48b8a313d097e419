"""Detection explanations: D-RISE's masks and maps on detectors whose answer is known, the energy pointing game by
hand, EigenCAM's principal direction, the box picks from stored detections, and the budget plan that explains fewer
boxes, never fewer masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from xferdiag.config import Budget
from xferdiag.explainers.budget import PassCosts, fit_plan
from xferdiag.tasks.detection.drise import MASK_DESIGNS, drise, masks, match_weights, pointing_shares
from xferdiag.tasks.detection.eigencam import in_boxes
from xferdiag.tasks.detection.explain import MASK_FLOOR, BoxPlan
from xferdiag.tasks.detection.picks import pick_boxes

BOX = torch.tensor([[8.0, 12.0, 24.0, 28.0]])  # x1 y1 x2 y2 in a 40 x 48 image


def region_detector(region: torch.Tensor, label: int = 1):
    """A detector that finds ``region`` with a score equal to the mean of the image inside it (a known answer: the
    pixels it needs are exactly the region's)."""
    x1, y1, x2, y2 = (int(v) for v in region[0])

    def detect(images):
        return [{"boxes": region.clone(), "labels": torch.tensor([label]),
                 "scores": image[:, y1:y2, x1:x2].mean().reshape(1)} for image in images]

    return detect


@pytest.mark.parametrize("design", MASK_DESIGNS)
def test_masks_keep_the_asked_share_of_the_image_and_are_reproducible(design):
    stack = masks(256, (40, 48), cells=8, p=0.5, design=design, seed=3)
    assert stack.shape == (256, 40, 48) and float(stack.min()) >= 0 and float(stack.max()) <= 1
    assert float(stack.mean()) == pytest.approx(0.5, abs=0.03)
    assert torch.equal(stack, masks(256, (40, 48), cells=8, p=0.5, design=design, seed=3))
    assert not torch.equal(stack, masks(256, (40, 48), cells=8, p=0.5, design=design, seed=4))


def test_stratified_masks_keep_every_cell_in_exactly_half_of_them():
    """Without the shift and the bilinear blur, a stratified cell is kept by exactly p N masks (random: binomial)."""
    from xferdiag.tasks.detection.drise import _grids

    keep, shifts = _grids(100, 4, 0.5, "stratified", np.random.default_rng(0))
    assert (keep.sum(axis=0) == 50).all()
    assert np.sort(np.floor(shifts[:, 0] * 100)).tolist() == list(range(100))  # one shift per stratum
    random_keep, _ = _grids(100, 4, 0.5, "random", np.random.default_rng(0))
    assert (random_keep.sum(axis=0) != 50).any()


def test_match_weight_is_iou_times_score_of_the_best_same_class_detection():
    found = {"boxes": torch.tensor([[8.0, 12.0, 24.0, 28.0], [8.0, 12.0, 16.0, 28.0], [0.0, 0.0, 4.0, 4.0]]),
             "labels": torch.tensor([2, 1, 1]), "scores": torch.tensor([0.9, 0.8, 0.99])}
    weights = match_weights(torch.cat([BOX, BOX]), torch.tensor([1, 2]), found)
    assert weights.tolist() == pytest.approx([0.5 * 0.8, 0.9])  # class 1: the half-width box (IoU 0.5); class 2: exact
    assert match_weights(BOX, torch.tensor([1]), {k: v[:0] for k, v in found.items()}).tolist() == [0.0]


def test_pointing_shares_by_hand():
    maps = np.zeros((2, 4, 4))
    maps[0, 1:3, 1:3] = 1.0  # all its mass in the box
    maps[1] = -1.0
    maps[1, 0, 0] = 3.0  # positive mass only outside
    maps[1, 1, 1] = 1.0  # and a quarter of it inside
    share, area = pointing_shares(maps, np.array([[1, 1, 3, 3], [1, 1, 3, 3]]))
    assert share.tolist() == pytest.approx([1.0, 0.25]) and area.tolist() == pytest.approx([0.25, 0.25])
    assert pointing_shares(np.zeros((1, 4, 4)), np.array([[0, 0, 2, 2]]))[0].tolist() == [0.0]


@pytest.mark.parametrize("design", MASK_DESIGNS)
def test_drise_finds_the_pixels_a_known_detector_needs_and_both_arms_see_the_same_masks(design):
    image = torch.ones(3, 40, 48)
    other = torch.tensor([[30.0, 4.0, 46.0, 20.0]])
    maps, weights = drise({"a": region_detector(BOX), "b": region_detector(other)}, image, BOX, torch.tensor([1]),
                          n_masks=300, batch_size=64, cells=8, design=design, seed=0)
    share, area = pointing_shares(maps["a"], BOX.numpy())
    assert share[0] > 3 * area[0]  # a's map sits on the region its score reads (noise outside keeps it below 1)
    assert pointing_shares(maps["b"], BOX.numpy())[0][0] == 0.0  # b never overlaps the target: its weights are 0
    assert (weights["b"] == 0).all() and weights["a"].shape == (300, 1)
    # the same masks for both arms: b's weights for a target at its own region are a's weights for a's region
    _, again = drise({"b": region_detector(other)}, image, other, torch.tensor([1]), n_masks=300, batch_size=64, cells=8,
                     design=design, seed=0)
    stack = masks(300, (40, 48), cells=8, design=design, seed=0)
    assert again["b"][:, 0] == pytest.approx(stack[:, 4:20, 30:46].mean(dim=(1, 2)).numpy(), abs=1e-5)
    assert weights["a"][:, 0] == pytest.approx(stack[:, 12:28, 8:24].mean(dim=(1, 2)).numpy(), abs=1e-5)


def test_the_drise_map_is_the_centred_weighted_sum_of_the_masks():
    image = torch.ones(3, 16, 16)
    maps, weights = drise({"a": region_detector(torch.tensor([[0.0, 0.0, 8.0, 8.0]]))}, image, torch.tensor([[0.0, 0.0, 8.0, 8.0]]),
                          torch.tensor([1]), n_masks=20, batch_size=7, cells=4, p=0.5, design="random", seed=1)
    stack = masks(20, (16, 16), cells=4, p=0.5, design="random", seed=1).numpy()
    w = weights["a"][:, 0]
    expected = np.tensordot(w - w.mean(), stack, axes=1) / (20 * 0.5)
    assert maps["a"][0] == pytest.approx(expected, abs=1e-5)
    assert spearmanr(maps["a"][0].ravel(), stack[:, :8, :8].mean(axis=(1, 2)) @ stack.reshape(20, -1)).statistic > 0.5


def test_eigencam_in_boxes_is_renormalised_inside_and_zero_outside():
    cam = np.tile(np.linspace(0, 1, 10), (8, 1))
    out = in_boxes(cam, np.array([[2, 1, 6, 5]]))[0]
    assert out[1:5, 2:6].min() == 0 and out[1:5, 2:6].max() == pytest.approx(1.0)
    assert out[:, :2].sum() == 0 and out[:, 6:].sum() == 0 and out[0].sum() == 0 and out[5:].sum() == 0


def test_the_picks_take_missed_top_and_disagreeing_boxes_in_turn():
    truth = {"annotations": [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10]},
                             {"image_id": 1, "category_id": 1, "bbox": [20, 20, 10, 10]},
                             {"image_id": 2, "category_id": 1, "bbox": [5, 5, 10, 10], "iscrowd": 1}]}
    results = {"transfer": [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},
                            {"image_id": 1, "category_id": 1, "bbox": [40, 40, 5, 5], "score": 0.3}],
               "scratch": [{"image_id": 1, "category_id": 1, "bbox": [1, 0, 10, 10], "score": 0.2},
                           {"image_id": 1, "category_id": 1, "bbox": [60, 60, 5, 5], "score": 0.1}]}
    picks, pools = pick_boxes(truth, results, 10)
    assert pools == {"missed": 2, "top": 2, "disagreement": 2}  # no crowd region; no detection under 0.3
    assert [(p.kind, p.box) for p in picks] == [("missed", (20.0, 20.0, 30.0, 30.0)), ("top", (0.0, 0.0, 10.0, 10.0)),
                                                ("disagreement", (40.0, 40.0, 45.0, 45.0))]
    assert picks[1].scores == {"transfer": 0.9, "scratch": 0.2}  # the weak scratch box still matches (IoU 9/11)
    assert len(pick_boxes(truth, results, 1)[0]) == 1


def test_the_budget_explains_fewer_boxes_never_fewer_masks():
    costs = PassCosts(forward_s=0.01, backward_s=0.0)
    requested = BoxPlan(("drise", "eigencam"), 2, 8, 2 * MASK_FLOOR, 2)
    assert requested.total_s(costs) == pytest.approx(0.01 * (2 * 8 * 2 * MASK_FLOOR + 2 * 8 + 2 * 2 * 2 * MASK_FLOOR))
    fitted = fit_plan(requested, costs, Budget(0.01 * MASK_FLOOR * 9))  # room for about 3 boxes at the floor
    assert fitted.plan.masks == MASK_FLOOR and 1 <= fitted.plan.n < 8
    assert fitted.plan.total_s(costs) <= 0.01 * MASK_FLOOR * 9 < fit_plan(requested, costs, None).plan.total_s(costs)
    assert any("masks" in r for r in fitted.reductions) and any("explained" in r for r in fitted.reductions)
    smallest = fit_plan(requested, costs, Budget(1.0, strict=False)).plan  # a default budget runs the smallest plan
    assert (smallest.n, smallest.masks) == (1, MASK_FLOOR)


DONE_WHEN_IMAGES = 4
"""Test images whose ground-truth boxes the known-location check explains (1 or 2 boxes each)."""


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, one_thread):
    """A transfer-only run on easy known-location scenes (one or two large faces, textures behind them)."""
    from tests.detection_helpers import NOT_INSTALLED, mobilenet_v2_file
    from xferdiag import api
    from xferdiag.commands.detdemo import EASY
    from xferdiag.tasks.detection.data import make_scenes, write_coco

    weights = mobilenet_v2_file()
    if weights is None:
        pytest.skip(NOT_INSTALLED)
    root = tmp_path_factory.mktemp("drise")
    write_coco(make_scenes(48, seed=2, backgrounds="textures", **EASY), root / "scenes")
    return api.finetune(data=str(root / "scenes"), model="fasterrcnn", backbone="mobilenet_v2", pretrained_checkpoint=str(weights),
                        epochs=4, seeds=1, batch_size=2, test_fraction=0.25, baseline="none", threads=1, quiet=True,
                        out=str(root / "run"))


@pytest.mark.slow
def test_drise_points_into_the_known_boxes_of_a_trained_detector_and_the_randomisation_check_sees_its_weights(trained_run):
    """The issue's done-when: >= 90% of the explained ground-truth boxes of the transfer arm pass the energy pointing
    game, and the maps of the detector with its weights randomised (top down) no longer rank pixels alike. Measured
    (2026-12-07, test AP50 0.84): all 6 boxes pass, shares 0.44-0.93 against areas 0.10-0.24; |rho| 0.97 with the
    output layer re-initialised, 0.05 with every layer."""
    from xferdiag import rundir
    from xferdiag.config import RunConfig
    from xferdiag.explainers.faithfulness import SANITY_THRESHOLD
    from xferdiag.tasks.detection.checkpoints import load_finetuned
    from xferdiag.tasks.detection.data import load_detection
    from xferdiag.tasks.detection.dataset import DetectionSet
    from xferdiag.tasks.detection.explain import drise_boxes, randomisation
    from xferdiag.tasks.detection.picks import Pick
    from xferdiag.tasks.detection.prepare import new_detector

    rd = rundir.RunDir(trained_run)
    assert rundir.read_json(rd.seed("transfer", 0).metrics_json)["test"]["ap50"] > 0.5  # it learned where the faces are
    config = RunConfig.from_dict(rundir.read_json(rd.run_json)["config"])
    data = load_detection(config.data)
    model = new_detector(config, 1, False, 0)
    load_finetuned(model, rd.seed("transfer", 0).model_pt)
    model.eval()
    truth = rundir.read_json(rd.test_annotations_json)
    shown = sorted({a["image_id"] for a in truth["annotations"]})[:DONE_WHEN_IMAGES]
    picks = [Pick(a["image_id"], (a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]),
                  a["category_id"], "missed", {}) for a in truth["annotations"] if a["image_id"] in shown]
    index_of = {img.image_id: k for k, img in enumerate(data.images)}
    images = {i: DetectionSet(data, np.array([index_of[i]]))[0][0] for i in shown}
    maps = drise_boxes({"transfer": model}, images, picks, masks=MASK_FLOOR, seed=0)["transfer"]
    share, area = pointing_shares(np.stack(maps), np.array([p.box for p in picks]))
    passed = float((share > area).mean())
    print(f"pointing: {int((share > area).sum())} of {len(picks)} ground-truth boxes ({passed:.0%}); shares {np.round(share, 3)} "
          f"against areas {np.round(area, 3)}")
    assert len(picks) >= DONE_WHEN_IMAGES and passed >= 0.9
    same_image = [k for k, p in enumerate(picks) if p.image_id == picks[0].image_id]
    check = randomisation(model, images, [picks[k] for k in same_image], [maps[k] for k in same_image], masks=MASK_FLOOR,
                          steps=2, seed=0)
    print(f"randomisation: similarity by step {check['similarity']}")
    assert not check["flagged"] and check["similarity_after_randomisation"] < SANITY_THRESHOLD


def _explained(root, flagged: bool, blank_eigencam: str | None = None):
    """The hand-made detection run of the report tests with a hand-written box explanation of image 1's first box
    (``blank_eigencam``: the arm whose EigenCAM is all zeros, as a clipped first component leaves it)."""
    from tests.detection_report_fixtures import write_detection_run
    from xferdiag.rundir import RunDir, write_json, write_npz

    run = RunDir(write_detection_run(root))
    heat = np.zeros((64, 64), dtype=np.float32)
    heat[4:24, 4:24] = 1.0
    write_npz(run.maps_npz, image_1=np.full((64, 64, 3), 128, dtype=np.uint8),
              **{f"{m}_{arm}_0": np.zeros_like(heat) if (m, arm) == ("eigencam", blank_eigencam) else heat
                 for m in ("drise", "eigencam") for arm in ("transfer", "scratch")})
    write_json(run.index_json, {
        "kind": "image", "methods": ["drise", "eigencam"], "arms": ["transfer", "scratch"], "boxes_requested": 3,
        "boxes_explained": 1, "candidates": {"missed": 1, "top": 4, "disagreement": 2},
        "boxes": [{"image_id": 1, "box": [4, 4, 24, 24], "category_id": 1, "kind": "missed", "scores": {"transfer": 0.9, "scratch": 0.0},
                   "area_share": 0.0977, "pointing": {"transfer": 0.6, "scratch": 0.05},
                   "pointing_passed": {"transfer": True, "scratch": False},
                   "eigencam_pointing": {"transfer": 0.2, "scratch": 0.1}}],
        "masks": {"n": 500, "design": "stratified", "cells": 16, "keep": 0.5, "seed": 0},
        "randomisation": {"arm": "transfer", "boxes": 1, "layers": ["a", "b"], "similarity": [0.3, 0.7 if flagged else 0.1],
                          "similarity_after_randomisation": 0.7 if flagged else 0.1, "threshold": 0.5, "flagged": flagged}})
    return run


def test_the_report_shows_each_explained_box_with_both_arms_and_its_checks(tmp_path):
    from xferdiag.report import render_report

    run = _explained(tmp_path / "passed", flagged=False)
    html = render_report(run.root).html
    section = html[html.index('id="box-explanations"'):]
    section = section[:section.index("</section>")]
    assert 'href="#box-explanations"' in html and 'id="explanations"' not in html  # the task's section, not the image one
    assert "1 box explained of the 3 requested (7 candidates" in section
    assert "transfer: the D-RISE map points into the box for 1 of 1 boxes." in section
    assert "scratch: the D-RISE map points into the box for 0 of 1 boxes." in section
    assert "pointing 60.0%" in section and "pointing 5.0%" in section and "Area share 9.8%" in section
    assert "|ρ| 0.1 ≤ 0.5" in section and "failed the randomisation check" not in section
    assert section.count("<img ") == 5  # the image, then D-RISE and EigenCAM for each arm
    assert "blank (see below)" not in section and "A blank EigenCAM tile" not in section
    flagged = render_report(_explained(tmp_path / "flagged", flagged=True).root).html
    assert "D-RISE failed the randomisation check" in flagged


def test_a_blank_eigencam_tile_says_why_it_is_blank(tmp_path):
    from xferdiag.report import render_report

    html = render_report(_explained(tmp_path, flagged=False, blank_eigencam="scratch").root).html
    section = html[html.index('id="box-explanations"'):]
    section = section[:section.index("</section>")]
    cells = section[section.index("<tbody>"):section.index("</tbody>")].split("<td>")
    blank = [k for k, cell in enumerate(cells) if "blank (see below)" in cell]
    assert len(blank) == 1 and 'alt="scratch EigenCAM in the box"' in cells[blank[0]]
    assert "A blank EigenCAM tile is constant inside its box" in section[section.index("</tbody>"):]


def test_a_detection_run_without_explanations_says_how_to_add_them(tmp_path):
    from tests.detection_report_fixtures import write_detection_run
    from xferdiag.report import render_report

    report = render_report(write_detection_run(tmp_path))
    assert any(line.startswith("explanations: D-RISE and EigenCAM per box (run 'xferdiag explain") for line in report.missing)
