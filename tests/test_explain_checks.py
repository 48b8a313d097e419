import json

import numpy as np
import pytest
import torch
from explain_helpers import patch_data, tiny_cnn, trained_patch_cnn
from scipy.ndimage import sobel

from xferdiag.errors import InputError
from xferdiag.explainers import (
    ImageRequest,
    deletion_insertion,
    explain_arms,
    grad_cam,
    pick_examples,
    pointing_game,
    randomisation_test,
    spearman_agreement,
    topk_overlap,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: threads cost more than they save


@pytest.fixture(scope="module")
def trained():
    model = trained_patch_cnn(seed=0)
    x, y, masks = patch_data(45, seed=21)
    keep = y < 2  # images with a patch
    return model, x[keep], y[keep], masks[keep]


def edge_map(model, images, targets):
    """An "explanation" that ignores the model: gradient magnitude of the image."""
    gray = images.numpy().mean(1)
    return np.hypot(sobel(gray, axis=1), sobel(gray, axis=2))


def test_randomisation_flags_edge_detector_not_gradcam(trained):
    model, x, y, _ = trained
    edges = randomisation_test(model, x, y, edge_map)
    assert edges.flagged and edges.similarity_after_randomisation > 0.99
    cam = randomisation_test(model, x, y, lambda m, xs, ts: grad_cam(m, xs, targets=ts), n_steps=2)
    assert not cam.flagged and cam.similarity_after_randomisation < 0.5
    assert cam.layers[-1] == "0" and len(cam.layers) == 2 and cam.per_example.shape == (2, len(x))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 trained_patch_cnn(seed=0).state_dict().values()))


def test_deletion_and_insertion_prefer_the_true_map(trained):
    model, x, y, _ = trained
    cam = grad_cam(model, x, targets=y)
    noise = torch.rand(cam.shape, generator=torch.Generator().manual_seed(0))
    true, inverted, random = (deletion_insertion(model, x, m, y, steps=16) for m in (cam, 1 - cam, noise))
    assert true.deletion.shape == (len(x), 17) and true.fractions[0] == 0 and true.fractions[-1] == 1
    assert true.deletion_auc.mean() < random.deletion_auc.mean() < inverted.deletion_auc.mean()
    assert true.insertion_auc.mean() > random.insertion_auc.mean() > inverted.insertion_auc.mean()
    assert true.deletion_auc.mean() < 0.3 and true.insertion_auc.mean() > 0.7
    with torch.no_grad():
        p = torch.softmax(model(x), 1)[torch.arange(len(x)), y].numpy()
    assert np.allclose(true.deletion[:, 0], p, atol=1e-5) and np.allclose(true.insertion[:, -1], p, atol=1e-5)


@pytest.mark.parametrize("baseline", ["blur", "zero"])
def test_other_baselines(trained, baseline):
    model, x, y, _ = trained
    result = deletion_insertion(model, x[:3], np.random.default_rng(0).random((3, 32, 32)), y[:3], steps=4,
                                baseline=baseline)
    assert np.all((result.deletion_auc >= 0) & (result.deletion_auc <= 1))


def test_pointing_game():
    maps = np.zeros((3, 6, 6))
    maps[0, 1, 1] = 1  # inside
    maps[1, 4, 4] = 1  # two pixels away
    masks = np.zeros((3, 6, 6), bool)
    masks[:, :3, :3] = True
    result = pointing_game(maps, masks)
    assert result.hits.tolist() == [True, False, False] and result.accuracy == pytest.approx(1 / 3)
    assert pointing_game(maps, masks, tolerance=3).hits.tolist() == [True, True, False]  # constant map: a miss
    with pytest.raises(InputError, match="masks: every image needs at least one mask pixel"):
        pointing_game(maps, np.zeros_like(masks))


def test_agreement():
    rng = np.random.default_rng(0)
    a = rng.random((3, 8, 8))
    assert np.allclose(spearman_agreement(a, a), 1)
    assert np.allclose(spearman_agreement(a, -a), -1)
    assert np.isnan(spearman_agreement(a, np.ones_like(a))).all()
    assert np.allclose(topk_overlap(a, a, k=0.1), 1)
    assert np.allclose(topk_overlap(a, -a, k=0.25), 0)
    half = np.zeros((1, 4, 4))
    half[0, :2] = [[4, 3, 2, 1], [0, 0, 0, 0]]
    other = np.zeros((1, 4, 4))
    other[0, 0, :2] = [1, 1]
    assert topk_overlap(half, other, k=0.125).tolist() == [1.0]
    with pytest.raises(InputError, match="map_a and map_b"):
        spearman_agreement(a, a[:2])
    with pytest.raises(InputError, match="k: must be a fraction"):
        topk_overlap(a, a, k=2)


def test_pick_examples():
    labels = np.repeat([0, 1, 2], 10)
    transfer = labels.copy()
    scratch = labels.copy()
    scratch[[3, 25]] = 1 - scratch[[3, 25]] % 2
    picked = pick_examples(labels, {"transfer": transfer, "scratch": scratch}, n=6, seed=0)
    assert len(picked) == 6 and len(set(picked)) == 6 and np.all(np.diff(picked) > 0)
    assert {3, 25} <= set(picked.tolist())
    assert np.bincount(labels[picked], minlength=3).min() >= 2
    assert np.array_equal(picked, pick_examples(labels, {"transfer": transfer, "scratch": scratch}, 6, seed=0))
    assert len(pick_examples(labels, {"transfer": transfer}, n=100)) == 30
    with pytest.raises(InputError, match="predictions_by_arm\\['x'\\]: expected one entry per image"):
        pick_examples(labels, {"x": transfer[:5]}, n=3)


def test_explaining_images_writes_the_documented_index(trained):
    model, x, y, _ = trained
    torch.manual_seed(5)
    scratch = tiny_cnn()
    models = {"transfer": model, "scratch": scratch}
    background = patch_data(8, seed=22)[0]
    index, maps = explain_arms(ImageRequest(models=models, images=x[:4], labels=y[:4], background=background, seed=0,
                                            lime_samples=80, shap_samples=16, example_ids=[10, 11, 12, 13]), progress=False)
    json.dumps(index, allow_nan=False)
    assert set(index) == {"kind", "methods", "arms", "seed", "params", "examples", "agreement", "sanity", "faithfulness",
                          "shap_additivity_gap", "budget"}
    assert index["kind"] == "image"  # one vocabulary of kinds: image indexes name theirs too
    assert index["budget"]["budget_s"] is None and index["budget"]["reductions"] == []  # no budget: as asked
    assert index["budget"]["chosen"] == index["budget"]["requested"]
    assert set(index["budget"]["measured_s_by_part"]) == {m + part for m in ("gradcam", "shap", "lime")
                                                          for part in ("", " checks")}
    assert index["methods"] == ["gradcam", "shap", "lime"] and index["arms"] == ["transfer", "scratch"]
    assert [e["index"] for e in index["examples"]] == [10, 11, 12, 13]
    assert index["examples"][0]["correct"]["transfer"] is True
    assert set(index["examples"][0]["pred"]) == {"transfer", "scratch"}
    for method in index["methods"]:
        assert len(index["agreement"][method]["spearman"]) == 4
        assert len(index["agreement"][method]["topk_overlap"]) == 4
        assert set(index["sanity"][method]) == {"similarity_after_randomisation", "flagged", "examples"}
        assert set(index["faithfulness"][method]) == {"transfer", "scratch"}
        for arm in index["arms"]:
            m = maps[f"{method}__{arm}"]
            assert m.shape == (4, 32, 32) and m.dtype == np.float32 and m.min() >= 0 and m.max() <= 1
            aucs = index["faithfulness"][method][arm]
            assert 0 <= aucs["deletion_auc"] <= 1 and 0 <= aucs["insertion_auc"] <= 1
    assert maps["images"].shape == (4, 3, 32, 32) and maps["images"].dtype == np.float32
    assert len(index["shap_additivity_gap"]["scratch"]) == 4
    assert index["params"]["gradcam"]["layer"] == {"transfer": "7", "scratch": "7"}
    assert index["params"]["lime"]["num_samples"] == 80


def test_explaining_images_bad_inputs(trained):
    model, x, y, _ = trained

    def explain(models, labels, **options):
        return explain_arms(ImageRequest(models=models, images=x[:2], labels=labels, **options), progress=False)

    with pytest.raises(InputError, match="background: SHAP needs background images"):
        explain({"transfer": model}, y[:2])
    with pytest.raises(InputError, match="methods: choose distinct names"):
        explain({"transfer": model}, y[:2], methods=("gradcam", "occlusion"))
    with pytest.raises(InputError, match="models: arm names must be non-empty strings without '__'"):
        explain({"a__b": model}, y[:2], methods=("gradcam",))
    with pytest.raises(InputError, match=r"labels: expected one entry per image \(2\)"):
        explain({"transfer": model}, y[:3], methods=("gradcam",))
    with pytest.raises(InputError, match=r"models\['t'\]: expected a torch.nn.Module"):
        explain({"t": "resnet"}, y[:2], methods=("gradcam",))
    with pytest.raises(InputError, match=r"deletion_steps: must be an integer >= 1, got 0"):
        explain({"transfer": model}, y[:2], methods=("gradcam",), deletion_steps=0)
