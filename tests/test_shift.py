"""Known answers for the domain-shift analyzers, computed independently in the tests."""

import json

import numpy as np
import pytest
import scipy.linalg
import torch
from scipy import stats
from scipy.spatial.distance import pdist

from xferdiag.analyzers import mmd, shift
from xferdiag.analyzers.layer_shift import layer_shift
from xferdiag.analyzers.shift import (
    classifier_two_sample_test,
    frechet_distance,
    ks_shift,
    label_shift,
    mmd_test,
    proxy_a_distance,
)
from xferdiag.errors import InputError
from xferdiag.report.interpret import layer_shift_sentences

pytestmark = pytest.mark.usefixtures("one_thread")


def gaussians(n=200, m=200, d=5, shift_by=0.0, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=(m, d)) + shift_by


def naive_mmd2(x, y, sigma):
    """Unbiased MMD² as a double loop over pairs, straight from Gretton et al. 2012, eq. 3."""
    def k(a, b):
        return np.exp(-np.sum((a - b) ** 2) / (2 * sigma**2))

    n, m = len(x), len(y)
    kxx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j)
    kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    kxy = sum(k(x[i], y[j]) for i in range(n) for j in range(m))
    return kxx / (n * (n - 1)) + kyy / (m * (m - 1)) - 2 * kxy / (n * m)


# ----------------------------------------------------------------------------------- MMD


def test_mmd_statistic_equals_double_loop():
    x, y = gaussians(6, 5, 3, shift_by=0.7)
    result = mmd_test(x, y, n_permutations=10, bandwidth=1.3, device="cpu")
    assert result.statistic == pytest.approx(naive_mmd2(x, y, 1.3), rel=1e-12, abs=1e-14)
    assert result.estimator == "permutation" and result.bandwidth == 1.3


def test_median_bandwidth_is_median_pooled_distance():
    x, y = gaussians(30, 40, 4)
    result = mmd_test(x, y, n_permutations=10, bandwidth="median", device="cpu")
    assert result.bandwidth == pytest.approx(np.median(pdist(np.vstack([x, y]))))
    assert result.features == "raw" and len(result.kernels) == 1


def test_batched_permutations_equal_per_permutation_loop():
    x, y = gaussians(7, 5, 2, shift_by=0.3)
    n, m = len(x), len(y)
    masks = mmd._permutation_masks(np.random.default_rng(3), n, m, 50)
    z = torch.from_numpy(np.vstack([x, y]))
    k = mmd._pooled_kernel(z, 0.9)
    batched = mmd._mmd2_unbiased(k, torch.from_numpy(masks), n, m).numpy()
    pooled = np.vstack([x, y])
    looped = [naive_mmd2(pooled[mask == 1], pooled[mask == 0], 0.9) for mask in masks]
    np.testing.assert_allclose(batched, looped, rtol=1e-10, atol=1e-13)
    assert (masks.sum(1) == n).all() and len({tuple(r) for r in masks}) > 40


def test_p_value_does_not_depend_on_batch_size(monkeypatch):
    x, y = gaussians(40, 30, 3, shift_by=0.2)
    whole = mmd_test(x, y, n_permutations=300, device="cpu")
    monkeypatch.setattr(mmd, "_CHUNK_ELEMENTS", 7 * 70)  # batches of 7 permutations
    assert mmd_test(x, y, n_permutations=300, device="cpu") == whole


def test_p_value_agrees_with_reindexing_loop():
    x, y = gaussians(25, 25, 2, shift_by=0.35)
    ours = mmd_test(x, y, n_permutations=2000, bandwidth=1.0, device="cpu")
    pooled = np.vstack([x, y])
    kernel = np.exp(-np.sum((pooled[:, None] - pooled[None]) ** 2, -1) / 2)
    np.fill_diagonal(kernel, 0)
    null, rng = [], np.random.default_rng(11)
    for perm in (rng.permutation(50) for _ in range(2000)):
        k = kernel[np.ix_(perm, perm)]
        null.append(k[:25, :25].sum() / 600 + k[25:, 25:].sum() / 600 - 2 * k[:25, 25:].sum() / 625)
    p_loop = (1 + np.sum(np.array(null) >= ours.statistic)) / 2001
    assert abs(ours.p_value - p_loop) < 0.03  # Monte Carlo error of each is about 0.01


def test_identical_distributions_not_rejected():
    result = mmd_test(*gaussians(), device="cpu")
    assert result.p_value > 0.1
    assert abs(result.statistic) < 0.01


def test_mean_shift_detected_and_p_value_never_zero():
    result = mmd_test(*gaussians(shift_by=0.5), n_permutations=500, device="cpu")
    assert result.statistic > 0.03
    assert result.p_value == pytest.approx(1 / 501)


def test_block_estimator_for_large_samples():
    x, y = gaussians(400, 500, 5)
    null = mmd_test(x, y, block_threshold=800, device="cpu")
    assert null.estimator == "block" and null.n_permutations == 0
    assert null.p_value > 0.05
    full = mmd_test(x, y + 0.5, device="cpu")
    shifted = mmd_test(x, y + 0.5, block_threshold=800, device="cpu")
    assert shifted.p_value < 1e-4
    assert shifted.statistic == pytest.approx(full.statistic, rel=0.3)


def low_variance_shift(seed, n=300, d=384, k=10, rotate=False):
    """Most dimensions unit-variance noise; the target moves 2 SDs along k dimensions of SD 0.05."""
    rng = np.random.default_rng(seed)
    scale = np.r_[np.full(k, 0.05), np.ones(d - k)]
    return rng.normal(size=(n, d)) * scale, rng.normal(size=(n, d)) * scale + np.r_[np.full(k, 0.1), np.zeros(d - k)]


def test_aggregate_finds_shift_along_low_variance_dimensions():
    """On 5 seeds the median kernel on raw features rejects at most 2 (its distances are the 374 noise
    dimensions'); the linear domain classifier and the aggregated test reject all, at p < 0.01."""
    old, new = [], []
    for seed in range(5):
        x, y = low_variance_shift(1000 + seed)
        old.append(mmd_test(x, y, n_permutations=200, bandwidth="median", seed=seed, device="cpu").p_value)
        result = mmd_test(x, y, n_permutations=200, seed=seed, device="cpu")
        new.append(result.p_value)
        assert classifier_two_sample_test(x, y, seed=seed).p_value < 0.01
        assert result.statistic > 0 and result.features == "whitened" and len(result.kernels) == 2 * len(mmd.SCALES)
    assert sum(p <= 0.05 for p in old) <= 2 and max(new) < 0.01, (old, new)


def test_aggregate_finds_shift_along_low_variance_directions():
    """Correlated features whose domains differ only along their smallest principal direction (1.5 SDs):
    z-scoring each feature does not reach it, whitening does. (Not always: with a condition number in
    the thousands, seed 6, shrinkage lifts that direction's variance enough to hide the shift.)"""
    rng = np.random.default_rng(5)
    mixing = rng.normal(size=(8, 8))
    x, y = rng.normal(size=(150, 8)) @ mixing, rng.normal(size=(150, 8)) @ mixing
    _, vectors = np.linalg.eigh(mixing.T @ mixing)
    y = y + 1.5 * np.sqrt(np.linalg.eigvalsh(mixing.T @ mixing)[0]) * vectors[:, 0]
    assert mmd_test(x, y, n_permutations=200, bandwidth="median", device="cpu").p_value > 0.05
    result = mmd_test(x, y, n_permutations=200, device="cpu")
    assert result.p_value < 0.01 and result.kernels[result.chosen][0] == "whitened"


def test_aggregate_keeps_power_on_mean_shift():
    result = mmd_test(*gaussians(100, 100, 5, shift_by=0.5), n_permutations=200, device="cpu")
    assert result.p_value < 0.01


def test_aggregate_size_under_null():
    """200 seeded null replicates at alpha 0.05: the rejection rate lies in the binomial band
    (0.05 ± 2.6 SDs, 0.01-0.09) — the max over ten kernels is calibrated by the shared permutations."""
    rejections = [mmd_test(*gaussians(15, 15, 3, seed=t), n_permutations=99, seed=t, device="cpu").p_value <= 0.05
                  for t in range(200)]
    assert 0.01 <= np.mean(rejections) <= 0.09


def test_ledoit_wolf_matches_scikit_learn():
    from sklearn.covariance import ledoit_wolf_shrinkage
    rng = np.random.default_rng(2)
    for rows, d in ((50, 10), (30, 80)):
        z = rng.normal(size=(rows, d)) @ rng.normal(size=(d, d))
        z -= z.mean(axis=0)
        assert mmd._ledoit_wolf(z) == pytest.approx(ledoit_wolf_shrinkage(z, assume_centered=True), rel=1e-10)


@pytest.mark.parametrize("rows, d", [(40, 6), (12, 30)])
def test_whitened_distance_is_shrunk_mahalanobis(rows, d):
    """Both branches (d <= N and d > N) give the distances of the inverse square root of the shrunk covariance."""
    from sklearn.covariance import ledoit_wolf
    rng = np.random.default_rng(4)
    z = mmd._standardize(rng.normal(size=(rows, d)) @ rng.normal(size=(d, d)))
    covariance, _ = ledoit_wolf(z, assume_centered=True)
    precision = np.linalg.inv(covariance)
    diff = z[:, None] - z[None]
    expected = np.einsum("ijk,kl,ijl->ij", diff, precision, diff)
    np.testing.assert_allclose(pdist(mmd._whiten(z), "sqeuclidean"), expected[np.triu_indices(rows, 1)], rtol=1e-8)


def test_constant_features_give_p_one():
    result = mmd_test(np.ones((10, 3)), np.ones((12, 3)), n_permutations=50, device="cpu")
    assert result.p_value == 1.0 and result.statistic == 0.0


@pytest.mark.slow
def test_permutation_test_size_under_null():
    rejections = [mmd_test(*gaussians(20, 20, 2, seed=t), n_permutations=200, seed=t, device="cpu").p_value
                  <= 0.05 for t in range(500)]
    assert 0.02 <= np.mean(rejections) <= 0.08


@pytest.mark.slow
def test_block_test_size_under_null():
    """Not liberal. With only 20 blocks it is somewhat conservative (about 0.03): block values are
    right-skewed under the null, which pulls the studentised mean down; the bias fades as k grows."""
    rejections = [mmd_test(*gaussians(400, 400, 2, seed=t), seed=t, block_threshold=100,
                           device="cpu").p_value <= 0.05 for t in range(600)]
    assert 0.01 <= np.mean(rejections) <= 0.08


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    x, y = gaussians(300, 200, 8, shift_by=0.2)
    cpu, gpu = mmd_test(x, y, device="cpu"), mmd_test(x, y, device="cuda")
    assert gpu.statistic == pytest.approx(cpu.statistic, rel=1e-4, abs=1e-6)
    assert abs(gpu.p_value - cpu.p_value) < 0.01


def test_mmd_to_dict_is_plain_json():
    data = mmd_test(*gaussians(20, 20), n_permutations=20, device="cpu").to_dict()
    assert json.loads(json.dumps(data)) == data
    assert all(type(data[k]) is float for k in ("statistic", "p_value", "bandwidth"))
    assert type(data["n_permutations"]) is int


@pytest.mark.parametrize("kwargs, name", [
    ({"y": np.zeros((5, 4))}, "x and y"),
    ({"y": np.array([[0.0, np.nan, 0.0]] * 5)}, "y:"),
    ({"x": np.array([[np.inf, 0.0, 0.0]] * 5)}, "x:"),
    ({"x": np.zeros((1, 3))}, "x:"),
    ({"n_permutations": 0}, "n_permutations"),
    ({"n_permutations": 2.5}, "n_permutations"),
    ({"bandwidth": -1.0}, "bandwidth"),
    ({"bandwidth": "scott"}, "bandwidth"),
    ({"seed": -1}, "seed"),
    ({"block_threshold": 0}, "block_threshold"),
    ({"device": "not-a-device"}, "device"),
])
def test_mmd_bad_input_names_argument(kwargs, name):
    args = {"x": np.ones((5, 3)), "y": np.zeros((5, 3))} | kwargs
    with pytest.raises(InputError, match=name):
        mmd_test(**args)


def test_block_estimator_needs_four_points_per_sample():
    with pytest.raises(InputError, match="y:"):
        mmd_test(np.ones((50, 2)), np.zeros((3, 2)), block_threshold=10)


# ------------------------------------------------------------------------ proxy A-distance


def test_proxy_a_distance_separable_is_two():
    x, y = gaussians(100, 150, 4, shift_by=10.0)
    result = proxy_a_distance(x, y)
    assert result.value == 2.0 and result.error == 0.0
    assert result.ci95[1] == 2.0 and 1.8 < result.ci95[0] < 2.0
    assert result.n_per_domain == 100


def test_proxy_a_distance_same_distribution_is_small():
    result = proxy_a_distance(*gaussians(300, 300, 4))
    assert result.value < 0.3 and result.ci95[0] == 0.0
    assert json.loads(json.dumps(result.to_dict())) == result.to_dict()


def test_proxy_a_distance_bad_input():
    with pytest.raises(InputError, match="n_splits"):
        proxy_a_distance(*gaussians(4, 10), n_splits=5)
    with pytest.raises(InputError, match="n_splits"):
        proxy_a_distance(*gaussians(), n_splits=1)


# -------------------------------------------------------------------------------- C2ST


def test_c2st_detects_shift_not_aa():
    shifted = classifier_two_sample_test(*gaussians(shift_by=0.5))
    assert shifted.accuracy > 0.65 and shifted.p_value < 1e-3 and shifted.n_test == 200
    same = classifier_two_sample_test(*gaussians(seed=1))
    assert same.p_value > 0.05


def test_c2st_p_value_is_binomial_tail():
    result = classifier_two_sample_test(*gaussians(shift_by=0.2), test_size=0.3)
    correct = round(result.accuracy * result.n_test)
    assert result.p_value == pytest.approx(stats.binom.sf(correct - 1, result.n_test, 0.5))


def test_c2st_accepts_any_classifier():
    from sklearn.neighbors import KNeighborsClassifier

    x, y = gaussians(200, 200, 2)
    ring = y / np.linalg.norm(y, axis=1, keepdims=True) * 3  # same mean, different shape
    assert classifier_two_sample_test(x, ring, classifier=KNeighborsClassifier(15)).p_value < 1e-6


@pytest.mark.parametrize("test_size", [0.0, 1.0, 0.01, "half"])
def test_c2st_bad_test_size(test_size):
    with pytest.raises(InputError, match="test_size"):
        classifier_two_sample_test(*gaussians(20, 20), test_size=test_size)


# ----------------------------------------------------------------------------- Fréchet


def fid_with_sqrtm(x, y):
    cx, cy = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = scipy.linalg.sqrtm(cx @ cy).real
    return np.sum((x.mean(0) - y.mean(0)) ** 2) + np.trace(cx + cy - 2 * covmean)


def test_frechet_equals_scipy_sqrtm():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 6)) @ rng.normal(size=(6, 6))
    y = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6)) + 1.5
    assert frechet_distance(x, y).value == pytest.approx(fid_with_sqrtm(x, y), rel=1e-9)


def test_frechet_population_closed_form():
    rng = np.random.default_rng(1)
    var_x, var_y = np.array([1.0, 4.0, 0.25]), np.array([2.0, 1.0, 1.0])
    x = rng.normal(size=(200_000, 3)) * np.sqrt(var_x)
    y = rng.normal(size=(200_000, 3)) * np.sqrt(var_y) + [1.0, 0.0, -2.0]
    expected = 5.0 + np.sum((np.sqrt(var_x) - np.sqrt(var_y)) ** 2)
    assert frechet_distance(x, y).value == pytest.approx(expected, rel=0.01)


def test_frechet_one_dimension_is_moment_formula():
    x, y = gaussians(50, 70, 1, shift_by=2.0)
    y = 3 * y
    expected = (x.mean() - y.mean()) ** 2 + (x.std(ddof=1) - y.std(ddof=1)) ** 2
    assert frechet_distance(x[:, 0], y[:, 0]).value == pytest.approx(expected, rel=1e-12)


def test_frechet_singular_covariances_stay_finite():
    x, y = gaussians(20, 30, 50)
    value = frechet_distance(x, y).value
    assert np.isfinite(value) and value == pytest.approx(fid_with_sqrtm(x, y), rel=1e-5)
    assert frechet_distance(x, x).value == pytest.approx(0.0, abs=1e-9)


def test_frechet_of_wide_features_takes_the_cheap_route_to_the_same_number():
    x, y = gaussians(40, 60, 8, shift_by=1.0)
    narrow = frechet_distance(x, y).value
    pad = lambda a: np.hstack([a, np.zeros((len(a), 200))])  # noqa: E731  # 208 features > 60 points: rank-deficient
    assert narrow == pytest.approx(fid_with_sqrtm(x, y), rel=1e-9)
    assert frechet_distance(pad(x), pad(y)).value == pytest.approx(narrow, rel=1e-9)
    rotation = np.linalg.qr(np.random.default_rng(5).normal(size=(208, 208)))[0]  # distances survive a rotation
    assert frechet_distance(pad(x) @ rotation, pad(y) @ rotation).value == pytest.approx(narrow, rel=1e-9)


# ---------------------------------------------------------------------------------- KS


def test_ks_null_and_shift():
    assert ks_shift(*gaussians(300, 300, 40)).fraction_shifted <= 0.05
    x, y = gaussians(300, 300, 40)
    y[:, :20] += 1.0
    result = ks_shift(x, y)
    assert result.fraction_shifted == 0.5 and result.n_dimensions == 40
    assert set(result.to_dict()) == {"fraction_shifted", "n_dimensions", "alpha"}


def test_benjamini_hochberg_matches_scipy():
    p = np.random.default_rng(2).uniform(size=200) ** 3
    np.testing.assert_allclose(shift._benjamini_hochberg(p), stats.false_discovery_control(p))


@pytest.mark.parametrize("alpha", [0, 1.5, float("nan")])
def test_ks_bad_alpha(alpha):
    with pytest.raises(InputError, match="alpha"):
        ks_shift(*gaussians(10, 10), alpha=alpha)


# ------------------------------------------------------------------------- label shift


def test_label_shift_priors_and_total_variation():
    result = label_shift([0, 0, 1, 2], [1, 1, 1, 1], n_classes=4)
    assert result.source == [0.5, 0.25, 0.25, 0.0] and result.target == [0.0, 1.0, 0.0, 0.0]
    assert result.total_variation == pytest.approx(0.75)
    assert result.to_dict()["classes"] == [0, 1, 2, 3]
    assert label_shift(np.array([0.0, 1.0]), [1, 0]).total_variation == 0.0


@pytest.mark.parametrize("source, target, n_classes, name", [
    ([0, 1, 2], [0, 1], 2, "n_classes"),
    ([0, 1.5], [0, 1], None, "source_labels"),
    ([0, 1], [[0, 1]], None, "target_labels"),
    ([0, 1], [-1, 0], None, "target_labels"),
    ([0, 1], [], None, "target_labels"),
    (["a", "b"], [0, 1], None, "source_labels"),
])
def test_label_shift_bad_input(source, target, n_classes, name):
    with pytest.raises(InputError, match=name):
        label_shift(source, target, n_classes)


# ----------------------------------------------------------------------------- layer by layer


def test_layer_shift_finds_the_layers_where_the_domains_differ():
    rng = np.random.default_rng(0)
    same = {"low": rng.normal(size=(400, 6)), "high": rng.normal(size=(400, 6))}
    moved = {"low": rng.normal(size=(500, 6)), "high": rng.normal(0.8, 1.0, size=(500, 6))}
    rows = layer_shift(same, moved, max_samples=150, n_permutations=200, seed=3)
    assert [r["name"] for r in rows] == ["low", "high"]
    assert not rows[0]["shifted"] and rows[1]["shifted"]
    assert rows[1]["p_value"] == pytest.approx(1 / 201)  # no permutation as large: the smallest p-value there is
    assert [(r["n_source"], r["n_target"]) for r in rows] == [(150, 150)] * 2
    # Benjamini-Hochberg over the two layers
    assert rows[0]["p_adjusted"] == pytest.approx(rows[0]["p_value"])
    assert rows[1]["p_adjusted"] == pytest.approx(min(1.0, 2 * rows[1]["p_value"]))
    assert layer_shift(same, moved, max_samples=150, n_permutations=200, seed=3) == rows
    with pytest.raises(InputError, match="same layers"):
        layer_shift(same, {"low": moved["low"]})


def test_layer_shift_domain_classifiers_and_frechet_separate_only_the_layer_with_a_planted_shift():
    rng = np.random.default_rng(1)
    names = ("embeddings", "layer.0", "layer.1")
    source = {name: rng.normal(size=(400, 16)) for name in names}
    target = {name: rng.normal(size=(400, 16)) for name in names}
    target["layer.0"][:, :4] += 1.5  # the planted shift: four features of one layer, ||Δμ||² = 9
    rows = {row["name"]: row for row in layer_shift(source, target, max_samples=200, n_permutations=100, seed=2)}
    moved = rows.pop("layer.0")
    assert moved["proxy_a_distance"] > 1.6 and moved["c2st_accuracy"] > 0.9 and moved["c2st_p_value"] < 1e-20
    assert moved["frechet"] == pytest.approx(9.0, rel=0.2)
    for row in rows.values():  # same distribution: chance for the classifiers, Fréchet only the sampling bias
        assert row["proxy_a_distance"] < 0.4 and abs(row["c2st_accuracy"] - 0.5) < 0.08 and row["c2st_p_value"] > 0.05
        assert row["frechet"] < 0.15 * moved["frechet"]
    tiny = layer_shift({"a": source["embeddings"][:4]}, {"a": target["embeddings"][:4]}, n_permutations=10)[0]
    assert tiny["proxy_a_distance"] is None and tiny["c2st_accuracy"] is None and tiny["frechet"] >= 0


def test_layer_shift_sentences_say_where_the_domains_come_apart():
    def rows(*flags):
        return [{"name": f"block{i}", "shifted": f} for i, f in enumerate(flags)]

    assert layer_shift_sentences(rows(False, False, True))[0].startswith(
        "1 of 3 layers tell source from target (MMD at each of 3 layers, Benjamini-Hochberg); the first is block2, after 2 that do not.")
    assert layer_shift_sentences(rows(True, True))[0].startswith("Source and target differ at all 2 layers, the first (block0) included")
    assert layer_shift_sentences(rows(False, False)) == ["No layer tells source from target (MMD at each of 2 layers, Benjamini-Hochberg)."]
    assert layer_shift_sentences(rows(True)) == []  # one layer is the penultimate test already in the table
    with_pad = [{**row, "proxy_a_distance": pad} for row, pad in zip(rows(False, True, True), (0.2, 1.4, 0.9))]
    assert layer_shift_sentences(with_pad)[1] == ("A linear domain classifier separates source from target most at block1 (proxy "
                                                  "A-distance 1.40 of 2, a large shift); at the first layer, block0, it reaches 0.20.")
    first = [{**row, "proxy_a_distance": pad} for row, pad in zip(rows(True, True), (1.9, 1.2))]
    assert layer_shift_sentences(first)[1] == ("A linear domain classifier separates source from target most at the first layer, "
                                               "block0 (proxy A-distance 1.90 of 2, a large shift).")
    tie = [{**row, "proxy_a_distance": pad} for row, pad in zip(rows(True, True, True), (2.0, 1.999, 2.0))]
    assert layer_shift_sentences(tie)[1] == ("A linear domain classifier separates source from target as well at every layer "
                                             "(proxy A-distance 2.00 of 2 at all 3, a large shift).")
