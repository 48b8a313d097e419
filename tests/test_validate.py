"""The one validation family (xferdiag/_validate.py): each check names the parameter first."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xferdiag._validate import check_array, check_labels, check_scalar, check_seed, to_numpy
from xferdiag.data import Domain, split_target
from xferdiag.errors import DataError, InputError
from xferdiag.modalities.table.load import TableRows


def test_tensors_on_any_device_read_like_arrays():
    t = torch.arange(6.0, requires_grad=True).reshape(3, 2)
    np.testing.assert_array_equal(to_numpy(t, "x"), t.detach().numpy())
    assert check_array(t, "x").dtype == np.float64


@pytest.mark.parametrize("value, kind, low, high, ok", [
    (3, int, 1, None, True), (0, int, 1, None, False), (True, int, 0, None, False), (2.0, int, 0, None, False),
    (np.int64(4), int, 1, None, True), (0.5, float, 0.0, 1.0, True), (1.0, float, 0.0, 1.0, False),
    (float("nan"), float, 0.0, None, False), ("1", float, None, None, False),
])
def test_check_scalar(value, kind, low, high, ok):
    if ok:
        assert check_scalar(value, "p", kind, low, high) == value
    else:
        with pytest.raises(InputError, match="^p: must be"):
            check_scalar(value, "p", kind, low, high)


def test_seed_gives_numpy_generator_of_that_seed():
    assert check_seed(7).integers(1000) == np.random.default_rng(7).integers(1000)
    with pytest.raises(InputError, match="^seed:"):
        check_seed(-1)


def test_label_rules_are_options_of_one_check():
    assert check_labels([0.0, 1.0, 1.0], "y").dtype == np.int64
    with pytest.raises(InputError, match="^y: labels must be 0..C-1 with every class present"):
        check_labels([0, 2], "y")
    np.testing.assert_array_equal(check_labels([0, 2], "y", all_present=False), [0, 2])
    np.testing.assert_array_equal(check_labels([-3, 5], "z", all_present=False, nonnegative=False), [-3, 5])
    for bad in ([True, False], [0.5, 1], [-1, 0]):
        with pytest.raises(InputError, match="^y:"):
            check_labels(bad, "y", all_present=False)
    with pytest.raises(InputError, match="^y: has 2 entries but features has 3 rows"):
        check_labels([0, 1], "y", n=3)


@pytest.mark.parametrize("change, name", [({"val_fraction": 1.5}, "val_fraction"), ({"test_fraction": -0.1}, "test_fraction"),
                                          ({"split_seed": -2}, "split_seed"), ({"shots": 0}, "shots")])
def test_split_target_names_a_bad_parameter(change, name):
    domain = Domain("toy", ["a", "b"], np.arange(40) % 2, TableRows(np.zeros((40, 1), np.float32), ["x"]))
    args = {"val_fraction": 0.2, "test_fraction": 0.2, "split_seed": 0, "shots": "all", **change}
    with pytest.raises(InputError, match=f"^{name}:"):
        split_target(domain, **args)


def test_a_split_whose_examples_are_all_left_out_ends_in_one_line_naming_the_parameter():
    """40 rows, 20% validation and 20% test: the 24 training rows are the first split emptied; the words fit any kind."""
    domain = Domain("toy", ["a", "b"], np.arange(40) % 2, TableRows(np.zeros((40, 1), np.float32), ["x"]))
    with pytest.raises(DataError, match=r"^the train split is empty: all its 24 examples are longer than the model's input "
                                        r"\(max_length\) and truncate is off; raise max_length or let them be truncated$"):
        split_target(domain, 0.2, 0.2, 0, "all", keep=np.zeros(40, bool))
