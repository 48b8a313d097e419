"""analyze runs each distinct backbone once over each set of examples (issue 18), with the numbers
of the path that runs every model: a linear probe's fine-tuned backbone is the pretrained one."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from xferdiag import rundir
from xferdiag.commands import analyze
from xferdiag.commands.finetune import finetune
from xferdiag.config import RunConfig

pytestmark = pytest.mark.usefixtures("one_thread")

MAX_SAMPLES = 60


@pytest.fixture(scope="module", params=["linear-probe", "full"])
def trained(request, tmp_path_factory, digits_checkpoint):
    out = tmp_path_factory.mktemp(request.param) / "run"
    config = RunConfig(data="digits:rotated", source_data="digits:upright", model="builtin:digits-cnn", strategy=request.param,
                       pretrained_checkpoint=str(digits_checkpoint), epochs=1, seeds=1, shots=[3], device="cpu", threads=1)
    finetune(config, out, quiet=True)
    return request.param, out


def _analyze_counting(run, monkeypatch) -> list[int]:
    """Analyze ``run``; return how many examples each backbone pass saw (a forward hook counts rows)."""
    rows: list[int] = []
    real = analyze.extract_layer_features

    def counted(backbone, dataset, layers, **kwargs):
        hook = backbone.register_forward_hook(lambda module, inputs, output: rows.append(len(inputs[0])))
        try:
            return real(backbone, dataset, layers, **kwargs)
        finally:
            hook.remove()

    monkeypatch.setattr(analyze, "extract_layer_features", counted)
    analyze.analyze_run(run, max_samples=MAX_SAMPLES, n_permutations=20, quiet=True)
    monkeypatch.undo()
    return rows


def test_each_backbone_runs_once_over_the_target_sample(trained, monkeypatch, tmp_path):
    strategy, run = trained
    run = shutil.copytree(run, tmp_path / "run")
    rows = _analyze_counting(run, monkeypatch)
    cache = rundir.read_npz(rundir.RunDir(run).features_npz)
    n_source, n_target, n_train = (len(cache[f"{d}__labels"]) for d in ("source", "target", "train"))
    finetuned_pass = n_target if strategy == "full" else 0  # a frozen backbone is not run again
    assert sum(rows) == n_source + n_target + finetuned_pass + n_train
    assert np.array_equal(cache["finetuned__target__penultimate"], cache["pretrained__target__penultimate"]) \
        == (strategy == "linear-probe")


def test_shared_features_equal_the_path_that_runs_every_model(trained, monkeypatch, tmp_path):
    _, run = trained
    shared, unshared = (shutil.copytree(run, tmp_path / name) for name in ("shared", "unshared"))
    analyze.analyze_run(shared, max_samples=MAX_SAMPLES, n_permutations=20, quiet=True)
    monkeypatch.setattr(analyze, "_same_weights", lambda a, b: False)
    analyze.analyze_run(unshared, max_samples=MAX_SAMPLES, n_permutations=20, quiet=True)
    a, b = rundir.RunDir(shared), rundir.RunDir(unshared)
    features_a, features_b = rundir.read_npz(a.features_npz), rundir.read_npz(b.features_npz)
    assert features_a.keys() == features_b.keys()
    assert all(np.array_equal(features_a[k], features_b[k]) for k in features_a)
    for name in ("shift_json", "similarity_json"):
        assert rundir.read_json(getattr(a, name)) == rundir.read_json(getattr(b, name))
    scores = [rundir.read_json(run.transferability_json)["scores"] for run in (a, b)]
    assert scores[0] == scores[1]
