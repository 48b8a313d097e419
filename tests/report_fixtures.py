"""Synthetic run directories for the report tests: the helpers live in :mod:`xferdiag.testing`
(written with the product's own writers, shared with the benchmarks); these names stay for the tests."""

from xferdiag.testing import (  # noqa: F401  (re-exported for the tests that import them from here)
    METHODS,
    write_analysis,
    write_arm_seed,
    write_data_json,
    write_explanations,
    write_full_run,
    write_minimal_run,
    write_run_json,
    write_shots,
    write_verdict,
)
