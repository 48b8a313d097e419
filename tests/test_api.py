"""The Python API's names: functions that mirror the commands, and modules that are also callable."""

import pytest

import xferdiag
import xferdiag.api
from xferdiag.errors import XferdiagError
from xferdiag.explain.gradcam import grad_cam


def test_api_functions_and_callable_modules():
    for name in ("finetune", "analyze", "build_report", "compare"):
        assert getattr(xferdiag, name) is getattr(xferdiag.api, name)
    assert xferdiag.explain.grad_cam is grad_cam  # the explainers stay reachable as attributes
    import xferdiag.explain as explain_module

    assert explain_module is xferdiag.explain and callable(xferdiag.explain)
    assert callable(xferdiag.demo) and callable(xferdiag.audit)
    with pytest.raises(AttributeError, match="no_such_thing"):
        xferdiag.no_such_thing


def test_calling_a_module_runs_its_command(tmp_path):
    with pytest.raises(XferdiagError, match="missing"):
        xferdiag.explain(tmp_path / "missing")
    with pytest.raises(XferdiagError, match="--pretrained-checkpoint"):
        xferdiag.audit(tmp_path / "nowhere.pt", {"data": "digits:rotated", "model": "builtin:digits-cnn"},
                       tmp_path / "audit")
