"""Pure functions over feature arrays: domain shift, representation similarity, transferability."""

from .shift import (
    classifier_two_sample_test,
    feature_shift,
    frechet_distance,
    ks_shift,
    label_shift,
    mmd_test,
    proxy_a_distance,
    two_sample_shift,
)
from .similarity import embed_2d, linear_cka, rbf_cka
from .transferability import h_score, leep, logme, logme_regression, nce, transferability_scores

__all__ = [
    "classifier_two_sample_test", "embed_2d", "feature_shift", "frechet_distance", "h_score", "ks_shift", "label_shift", "leep",
    "linear_cka", "logme", "logme_regression", "mmd_test", "nce", "proxy_a_distance", "rbf_cka", "transferability_scores",
    "two_sample_shift",
]
