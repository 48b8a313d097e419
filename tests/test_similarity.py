"""Known answers for CKA and the 2-D embedding."""

import numpy as np
import pytest

from xferdiag.analyzers import similarity
from xferdiag.analyzers.similarity import embed_2d, linear_cka, rbf_cka
from xferdiag.errors import InputError

pytestmark = pytest.mark.usefixtures("one_thread")


def rand(n, d, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d))


def orthogonal(d, seed=1):
    q, _ = np.linalg.qr(rand(d, d, seed))
    return q


# --------------------------------------------------------------------------------- CKA


@pytest.mark.parametrize("cka", [linear_cka, rbf_cka])
@pytest.mark.parametrize("debiased", [False, True])
def test_cka_of_itself_is_one(cka, debiased):
    x = rand(100, 12)
    assert cka(x, x, debiased=debiased) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("cka", [linear_cka, rbf_cka])
@pytest.mark.parametrize("debiased", [False, True])
def test_cka_invariant_to_rotation_and_isotropic_scaling(cka, debiased):
    x, y = rand(80, 10), rand(80, 6, seed=2)
    y = y + 0.5 * x[:, :6]
    expected = cka(x, y, debiased=debiased)
    assert cka(3.0 * x @ orthogonal(10), y, debiased=debiased) == pytest.approx(expected, rel=1e-10)
    assert cka(x + 7.0, 0.1 * y @ orthogonal(6), debiased=debiased) == pytest.approx(expected, rel=1e-10)


def test_linear_cka_matches_gram_matrix_definition():
    x, y = rand(40, 7), rand(40, 3, seed=5)
    y = y + x[:, :3]
    h = np.eye(40) - 1 / 40
    k, l = x @ x.T, y @ y.T

    def hsic(a, b):
        return np.trace(a @ h @ b @ h)

    assert linear_cka(x, y) == pytest.approx(hsic(k, l) / np.sqrt(hsic(k, k) * hsic(l, l)), rel=1e-10)


def unbiased_hsic(k, l):
    """Song et al. 2012, Theorem 2, written out with explicit matrices."""
    n = len(k)
    k, l = k - np.diag(np.diag(k)), l - np.diag(np.diag(l))
    one = np.ones(n)
    return (np.trace(k @ l) + (one @ k @ one) * (one @ l @ one) / ((n - 1) * (n - 2))
            - 2 / (n - 2) * one @ k @ l @ one) / (n * (n - 3))


def test_debiased_linear_cka_matches_song_estimator():
    x, y = rand(30, 5), rand(30, 4, seed=3)
    y = y + x[:, :4]
    x, y = x - x.mean(0), y - y.mean(0)
    k, l = x @ x.T, y @ y.T
    expected = unbiased_hsic(k, l) / np.sqrt(unbiased_hsic(k, k) * unbiased_hsic(l, l))
    assert linear_cka(x, y, debiased=True) == pytest.approx(expected, rel=1e-10)


def test_debiasing_removes_similarity_of_unrelated_representations():
    x, y = rand(200, 100), rand(200, 100, seed=9)
    assert linear_cka(x, y) > 0.3  # the known upward bias of the plain estimator
    assert abs(linear_cka(x, y, debiased=True)) < 0.05
    assert abs(rbf_cka(x, y, debiased=True)) < 0.05


def test_rbf_cka_approaches_linear_for_wide_kernels():
    x = rand(150, 8)
    y = np.tanh(x[:, :3]) + 0.3 * rand(150, 3, seed=4)
    assert rbf_cka(x, y, sigma_frac=200.0) == pytest.approx(linear_cka(x, y), abs=1e-4)


@pytest.mark.parametrize("call, name", [
    (lambda: linear_cka(rand(10, 3), rand(11, 3)), "y:"),
    (lambda: linear_cka(np.full((10, 3), np.nan), rand(10, 3)), "x:"),
    (lambda: linear_cka(rand(3, 3), rand(3, 3), debiased=True), "x:"),
    (lambda: linear_cka(np.ones((10, 3)), rand(10, 3)), "x:"),
    (lambda: rbf_cka(rand(10, 3), np.ones((10, 2))), "y:"),
    (lambda: rbf_cka(rand(10, 3), rand(10, 3), sigma_frac=0), "sigma_frac"),
])
def test_cka_bad_input_names_argument(call, name):
    with pytest.raises(InputError, match=name):
        call()


# --------------------------------------------------------------------------- embedding


def test_tsne_embedding_shape_domains_and_seed():
    x, y = rand(60, 80), rand(40, 80, seed=1) + 2
    first = embed_2d(x, y, seed=3)
    assert first.method == "tsne" and first.xy.shape == (100, 2)
    assert first.domain.tolist() == [0] * 60 + [1] * 40
    assert first.index.tolist() == list(range(60)) + list(range(40))
    np.testing.assert_array_equal(first.xy, embed_2d(x, y, seed=3).xy)


def test_embedding_subsamples_each_side():
    x, y = rand(300, 5), rand(50, 5, seed=1)
    result = embed_2d(x, y, max_points=100, method="pca")
    assert result.method == "pca" and result.xy.shape == (150, 2)
    source_rows = result.index[result.domain == 0]
    assert len(set(source_rows)) == 100 and np.all(np.diff(source_rows) > 0)
    # PCA coordinates of the chosen rows separate the far-apart target
    far = embed_2d(x, y + 20, max_points=100, method="pca")
    assert abs(far.xy[far.domain == 0, 0].mean() - far.xy[far.domain == 1, 0].mean()) > 10


def test_auto_switches_to_pca_for_many_points(monkeypatch):
    monkeypatch.setattr(similarity, "TSNE_MAX_POINTS", 50)
    assert embed_2d(rand(30, 4), rand(30, 4, seed=1)).method == "pca"


def test_embedding_of_one_feature():
    result = embed_2d(rand(10, 1), rand(10, 1, seed=1), method="tsne")
    assert result.xy.shape == (20, 2) and np.isfinite(result.xy).all()


@pytest.mark.parametrize("kwargs, name", [
    ({"method": "umap"}, "method"),
    ({"max_points": 1}, "max_points"),
    ({"seed": "zero"}, "seed"),
    ({"y": rand(10, 3)}, "x and y"),
])
def test_embedding_bad_input_names_argument(kwargs, name):
    args = {"x": rand(10, 4), "y": rand(10, 4, seed=1)} | kwargs
    with pytest.raises(InputError, match=name):
        embed_2d(**args)
