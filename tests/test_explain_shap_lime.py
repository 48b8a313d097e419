import numpy as np
import pytest
import torch
from explain_helpers import patch_data, tiny_cnn
from lime.lime_image import LimeImageExplainer
from sklearn.linear_model import LogisticRegression
from torch import nn

from xferdiag.errors import InputError
from xferdiag.explainers import lime_images, lime_tabular, shap_images, shap_tabular
from xferdiag.explainers.lime import _BatchedLimeImageExplainer, probability_fn, segmenter

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: threads cost more than they save


@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(0)
    return tiny_cnn().eval()


@pytest.fixture(scope="module")
def images():
    return patch_data(4, seed=11)[0]


def test_lime_same_seed_same_output_other_seed_differs(cnn, images):
    a = lime_images(cnn, images, num_samples=150, seed=3)
    b = lime_images(cnn, images, num_samples=150, seed=3)
    c = lime_images(cnn, images, num_samples=150, seed=4)
    assert np.array_equal(a.maps, b.maps) and np.array_equal(a.segments, b.segments)
    assert not np.array_equal(a.maps, c.maps)
    assert a.maps.shape == (4, 32, 32) and a.maps.dtype == np.float32
    assert a.maps.min() >= 0 and a.maps.max() <= 1
    for segments, weights, painted in zip(a.segments, a.weights, a.maps):
        assert len(weights) == segments.max() + 1 >= 5
        assert np.argmax(weights) in np.unique(segments[painted == 1])
    one = lime_images(cnn, images[2:3], num_samples=150, seed=3)  # independent of the other images
    assert np.array_equal(one.maps[0], a.maps[2])


def test_lime_batched_equals_lime_loop(cnn, images):
    image = images[0].permute(1, 2, 0).numpy()
    classify = probability_fn(cnn, 3)
    kwargs = dict(labels=(1,), top_labels=None, num_samples=120, segmentation_fn=segmenter("quickshift", 0),
                  random_seed=0)
    ours = _BatchedLimeImageExplainer(random_state=5).explain_instance(image, classify, batch_size=64, **kwargs)
    theirs = LimeImageExplainer(random_state=5).explain_instance(image, classify, batch_size=10, **kwargs)
    ours_ids, ours_w = zip(*ours.local_exp[1])
    their_ids, their_w = zip(*theirs.local_exp[1])
    assert ours_ids[:5] == their_ids[:5]
    assert np.allclose(ours_w, their_w, atol=1e-6)


def test_lime_grayscale_model_and_slic(images):
    torch.manual_seed(1)
    gray_model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    gray = images.mean(1, keepdim=True)
    result = lime_images(gray_model, gray, targets=[0, 1, 0, 1], num_samples=100, segmentation="slic")
    assert result.maps.shape == (4, 32, 32)
    assert result.targets.tolist() == [0, 1, 0, 1]
    # the classifier sees exactly the gray image back from lime's RGB copy
    rgb = gray[0].permute(1, 2, 0).expand(-1, -1, 3).numpy()[None]
    with torch.no_grad():
        direct = torch.softmax(gray_model(gray[:1]), 1).numpy()
    assert np.array_equal(probability_fn(gray_model, 1)(rgb), direct)


def linear_model() -> nn.Module:
    """Linear in the input: a 1x1 conv, global average pooling, a linear layer."""
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    with torch.no_grad():
        model[0].weight.mul_(20)
    return model.eval()


def test_shap_additivity_gap_small_for_linear_model(images):
    model = linear_model()
    background = 0.2 * torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(0))  # dark references
    result = shap_images(model, images, background, targets=[0, 1, 2, 0], n_samples=64)
    assert result.values.shape == (4, 3, 32, 32) and result.maps.shape == (4, 32, 32)
    with torch.no_grad():
        fx = model(images)[torch.arange(4), torch.tensor([0, 1, 2, 0])].numpy()
        expected = model(background).mean(0)[[0, 1, 2, 0]].numpy()
    assert np.allclose(result.expected_value, expected, atol=1e-5)
    delta = np.abs(fx - expected)
    # a linear model's gradient is constant, so only the references drawn can miss the background
    # mean; 64 samples of 16 references use each exactly four times, and the sum is exact
    assert np.all(result.additivity_gap < 1e-4 * delta)
    uneven = shap_images(model, images, background, targets=[0, 1, 2, 0], n_samples=24)  # 8 references twice
    assert np.all(uneven.additivity_gap > 10 * result.additivity_gap)


def test_shap_nonlinear_reports_gap_and_keeps_global_state(cnn, images):
    cnn.train()
    np.random.seed(123)
    expected_draw = np.random.rand()
    np.random.seed(123)
    result = shap_images(cnn, images, patch_data(8, seed=13)[0], n_samples=32, seed=1)
    assert np.random.rand() == expected_draw
    assert cnn.training
    assert result.additivity_gap.shape == (4,) and np.all(np.isfinite(result.additivity_gap))
    again = shap_images(cnn.eval(), images, patch_data(8, seed=13)[0], n_samples=32, seed=1)
    assert np.array_equal(result.values, again.values)


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    y = (x[:, 2] + 0.1 * x[:, 0] > 0).astype(int)
    clf = LogisticRegression().fit(x, y)
    return clf, x, ["age", "dose", "marker", "noise"]


def test_shap_tabular(table):
    clf, x, names = table
    result = shap_tabular(clf.predict_proba, x[:5], x[:150], names)
    assert result.values.shape == (5, 4)
    assert result.importance[0][0] == "marker"
    assert [v for _, v in result.importance] == sorted((v for _, v in result.importance), reverse=True)
    p = clf.predict_proba(x[:5])[np.arange(5), result.targets]
    assert np.allclose(result.values.sum(1), p - result.base_values, atol=1e-6)
    again = shap_tabular(clf.predict_proba, x[:5], x[:150], names)
    assert np.array_equal(result.values, again.values)


def test_lime_tabular(table):
    clf, x, names = table
    result = lime_tabular(clf.predict_proba, x[:3], x, names, num_samples=500, seed=1)
    assert result.values.shape == (3, 4)
    assert result.importance[0][0] == "marker"
    assert np.array_equal(result.values, lime_tabular(clf.predict_proba, x[:3], x, names, num_samples=500,
                                                      seed=1).values)


def test_bad_inputs(cnn, images, table):
    with pytest.raises(InputError, match="images: LIME needs 1- or 3-channel"):
        lime_images(cnn, torch.rand(1, 2, 8, 8))
    with pytest.raises(InputError, match=r"images: values must lie in \[0, 1\]"):
        lime_images(cnn, images * 3)
    with pytest.raises(InputError, match="segmentation: must be one of quickshift, slic"):
        lime_images(cnn, images, segmentation="felzenszwalb")
    with pytest.raises(InputError, match="num_samples: must be an integer >= 2"):
        lime_images(cnn, images, num_samples=0)
    with pytest.raises(InputError, match="background: images of shape"):
        shap_images(cnn, images, torch.rand(3, 3, 16, 16))
    with pytest.raises(InputError, match=r"targets: class indices must lie in 0\.\.2"):
        shap_images(cnn, images, images, targets=[0, 1, 2, 5])
    clf, x, names = table
    with pytest.raises(InputError, match="feature_names: has 2 names for 4 features"):
        shap_tabular(clf.predict_proba, x[:2], x, names[:2])
    with pytest.raises(InputError, match=r"predict_fn: must return an \(n, n_classes\)"):
        lime_tabular(clf.predict, x[:2], x, names)
    with pytest.raises(InputError, match="x and training_data have different feature widths"):
        lime_tabular(clf.predict_proba, x[:2, :3], x, names)
