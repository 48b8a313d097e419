"""The explanation tests' known-location data and tiny models (they live in the package, where the
benchmarks use them too)."""

from xferdiag.patch_data import COLOURS, PATCH, SIZE, accuracy, patch_data, tiny_cnn, trained_patch_cnn

__all__ = ["COLOURS", "PATCH", "SIZE", "accuracy", "patch_data", "tiny_cnn", "trained_patch_cnn"]
