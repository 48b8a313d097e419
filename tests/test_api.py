"""The Python API's names: plain functions that mirror the commands, with real signatures."""

import inspect

import pytest

import xferdiag
import xferdiag.api
from xferdiag.errors import XferdiagError


def test_api_functions_are_plain_functions_with_real_signatures():
    for name in ("finetune", "audit", "analyze", "explain", "build_report", "compare", "rank", "demo"):
        function = getattr(xferdiag, name)
        assert function is getattr(xferdiag.api, name) and inspect.isfunction(function)
        assert "args" not in inspect.signature(function).parameters
    assert list(inspect.signature(xferdiag.audit).parameters)[:3] == ["checkpoint", "config", "out"]
    assert list(inspect.signature(xferdiag.explain).parameters)[0] == "run_dir"
    with pytest.raises(AttributeError, match="no_such_thing"):
        _ = xferdiag.no_such_thing


def test_api_functions_run_their_commands(tmp_path):
    with pytest.raises(XferdiagError, match="missing"):
        xferdiag.explain(tmp_path / "missing")
    with pytest.raises(XferdiagError, match="--pretrained-checkpoint"):
        xferdiag.audit(tmp_path / "nowhere.pt", {"data": "digits:rotated", "model": "builtin:digits-cnn"},
                       tmp_path / "audit")
