"""Contract tests over the modality registry (timm's pattern): every registered modality, the toy sequence modality of
``tests/toy_modalities/`` included, runs finetune -> verdict -> analyze -> explain -> report on a tiny case through
the public command line. A stage its descriptor lists must work; a stage it lacks must end in one clear line (exit 2)
and the report must say the section is not available, so a modality can land before its analyses and explainers do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.cli_helpers import ENV
from tests.test_task_contracts import Tiny, _classification, cli, finetuned, one_line
from tests.toy_modalities import sequence
from xferdiag.commands.textdemo import make_tiny_bert, write_jsonl
from xferdiag.errors import ConfigError, DataError
from xferdiag.modalities.base import Modality
from xferdiag.modalities.descriptor import DESCRIPTORS, STAGES, ModalityDescriptor, describe_modality
from xferdiag.modalities.image import model as image_model_side
from xferdiag.modalities.loading import load_domain
from xferdiag.modalities.models import MODEL_SIDES
from xferdiag.modalities.registry import MODALITIES, register_modality
from xferdiag.modalities.text.cues import cue_corpus
from xferdiag.models import ModelSource
from xferdiag.rundir import RunDir
from xferdiag.rundir.kinds import kind_of

sequence.register()  # the toy modality's one registration line


def _image(root: Path) -> Tiny:
    """Rotated digits on the digits CNN, with a seeded random checkpoint: no pretraining to wait for."""
    torch.manual_seed(0)
    torch.save(ModelSource.parse("builtin:digits-cnn").build_classifier().state_dict(), root / "pre.pt")
    return Tiny(["--data", "digits:rotated", "--source-data", "digits:upright", "--model", "builtin:digits-cnn",
                 "--pretrained-checkpoint", root / "pre.pt", "--shots", "10", "--batch-size", "32"], "digits:rotated",
                "builtin:digits-cnn", analyze=["--max-samples", "60", "--permutations", "20"],
                explain=["--n", "2", "--methods", "gradcam"])


def _text(root: Path) -> Tiny:
    """The cue corpora on the 2-layer, 32-wide BERT the text demo makes (random weights, no download)."""
    model = f"hf:{make_tiny_bert(root / 'bert')}"
    target = write_jsonl(root / "target.jsonl", cue_corpus("target", 12, seed=3))
    source = write_jsonl(root / "source.jsonl", cue_corpus("source", 12, seed=4))
    return Tiny(["--data", target, "--source-data", source, "--model", model, "--max-length", "16", "--batch-size", "8"],
                str(target), model, analyze=["--max-samples", "30", "--permutations", "20"],
                explain=["--n", "2", "--methods", "ig"])


def _toy_sequence(root: Path) -> Tiny:
    """Ramps under noise, the target offset from the source; the 1-D convolution's checkpoint is seeded."""
    target = sequence.write_sequences(root / "target.seq.npz", 80, 24, seed=0, shift=0.5)
    source = sequence.write_sequences(root / "source.seq.npz", 80, 24, seed=1)
    model = "tests.toy_modalities.sequence.model:sequence_net"
    torch.manual_seed(0)
    torch.save(ModelSource.parse(model).build_classifier(2).state_dict(), root / "pre.pt")
    return Tiny(["--data", target, "--source-data", source, "--model", model, "--pretrained-checkpoint", root / "pre.pt",
                 "--batch-size", "16"], str(target), model, analyze=["--max-samples", "60", "--permutations", "20"],
                explain=["--n", "2"])


TINY = {"image": _image, "table": _classification, "text": _text, "sequence": _toy_sequence}
"""One tiny case per registered modality: a modality registered without one fails the first test below."""


@pytest.fixture(scope="module", params=list(MODALITIES))
def finished(request, tmp_path_factory, one_thread):
    """(kind, its tiny case, a run directory finetune made of it: 1 epoch, 2 seeds)."""
    kind = request.param
    root = tmp_path_factory.mktemp(kind)
    tiny = TINY[kind](root)
    return kind, tiny, finetuned(tiny, root)


def test_every_registered_modality_has_a_tiny_case_and_every_part_under_one_kind():
    assert set(TINY) == set(MODALITIES) == set(DESCRIPTORS) == set(MODEL_SIDES) and "sequence" in MODALITIES
    members = set(Modality.__annotations__) | {member for member in vars(Modality) if not member.startswith("_")}
    for kind, plugin in MODALITIES.items():
        assert not [member for member in sorted(members) if not hasattr(plugin, member)], kind
        assert plugin.name == kind and describe_modality(kind) is plugin.descriptor and kind == MODEL_SIDES[kind].NAME
        assert kind_of(kind) == kind  # the run directory reads a registered kind as itself, not as images


def test_a_descriptor_checks_its_stages_when_made():
    toy = describe_modality("sequence")
    assert toy.stages == ("finetune", "verdict", "analyze", "report") and not toy.supports("explain")
    assert [stage for stage in STAGES if not describe_modality("image").supports(stage)] == []
    for stages in (("finetune", "verdict", "reprot"), ("finetune", "report")):  # a typo, and the verdict left out
        with pytest.raises(ValueError, match="finetune, verdict, report"):
            ModalityDescriptor(**{**toy.__dict__, "stages": stages})


def test_registering_checks_that_its_parts_name_one_kind_and_changes_nothing_when_they_do_not():
    before = (dict(MODALITIES), dict(DESCRIPTORS), dict(MODEL_SIDES))
    with pytest.raises(ValueError, match="modality 'sequence': its descriptor and model side name 'sequence' and 'image'"):
        register_modality(sequence.SequenceModality(), image_model_side, sequence.load_sequences)
    assert before == (MODALITIES, DESCRIPTORS, MODEL_SIDES)


def test_the_toy_loader_claims_only_its_own_files_and_says_what_is_wrong_in_one_line(tmp_path):
    path = sequence.write_sequences(tmp_path / "a.seq.npz", 6, 5, seed=0)
    domain = load_domain(str(path))
    assert domain.kind == "sequence" and domain.classes == ["falling", "rising"] and domain.labels.tolist() == [0, 1] * 3
    assert domain.plain_input().size == 5 and domain.describe() == "6 sequences of 5 values"
    np.savez(tmp_path / "b.npz", x=np.zeros((4, 3), np.float32), y=np.array([0, 1, 0, 1]))
    assert load_domain(str(tmp_path / "b.npz")).kind == "table"  # a plain .npz is still the built-in loaders'
    np.savez(tmp_path / "c.seq.npz", x=np.zeros((4, 3), np.float32))
    with pytest.raises(DataError, match="c.seq.npz: not a sequence file with 'x' \\(N, L\\) and 'y'"):
        load_domain(str(tmp_path / "c.seq.npz"))


@pytest.mark.slow
def test_finetune_and_the_verdict_work_for_every_modality(finished):
    kind, _, run = finished
    rd = RunDir(run)
    assert json.loads(rd.data_json.read_text())["kind"] == kind
    verdict = json.loads(rd.verdict_json.read_text())
    assert verdict["seeds"] == [0, 1] and verdict["verdict"] in ("positive", "negative", "inconclusive")
    for arm in ("transfer", "scratch"):
        for row, seed in zip(verdict["per_seed"], (0, 1)):
            score = json.loads(rd.seed(arm, seed).metrics_json.read_text())["test"]["accuracy"]
            assert 0 <= score <= 1 and row[arm] == pytest.approx(score, abs=1e-9)  # the verdict judges what was measured


@pytest.mark.slow
def test_analyze_and_explain_work_where_supported_and_end_in_one_line_where_not(finished):
    kind, tiny, run = finished
    descriptor, rd = describe_modality(kind), RunDir(run)
    for stage, flags, made in (("analyze", tiny.analyze, rd.shift_json), ("explain", tiny.explain, rd.index_json)):
        code, _, err = cli(stage, run, *flags, "--quiet")
        if descriptor.supports(stage):
            assert code == 0 and made.is_file(), err
        else:
            one_line(code, err, f"'{stage}' is not available for {kind} data yet")
            assert not made.exists()


@pytest.mark.slow
def test_the_report_recomputes_the_same_verdict_and_says_what_is_not_available(finished):
    kind, _, run = finished
    descriptor, rd = describe_modality(kind), RunDir(run)
    before = json.loads(rd.verdict_json.read_text())
    rd.verdict_json.unlink()
    code, _, err = cli("report", run, "--quiet")
    assert code == 0, err
    assert json.loads(rd.verdict_json.read_text()) == before
    html = rd.report_html.read_text()
    lacking = [stage for stage in ("analyze", "explain") if not descriptor.supports(stage)]
    assert (f"not available for {kind} data yet" in html) == bool(lacking)
    assert ("Domain shift" in html) == descriptor.supports("analyze")


def _declare(site: Path, name: str, value: str) -> Path:
    """A package's dist-info on ``site`` declaring ``value`` in the ``xferdiag.modalities`` entry-point group."""
    dist = site / f"{name.replace('-', '_')}-0.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.0\n")
    (dist / "entry_points.txt").write_text(f"[xferdiag.modalities]\n{name} = {value}\n")
    return site


@pytest.mark.slow
def test_a_modality_an_installed_package_declares_works_in_a_fresh_process(tmp_path, one_thread):
    """The toy declared by a package (an ``xferdiag.modalities`` entry point naming its ``register``) instead of
    registered in the process: a fresh ``python -m xferdiag`` loads its data (its loader claims the ``.seq.npz``), trains
    and judges it, and refuses explain of its run in one line (its descriptor is found, so the run does not read as
    images)."""
    site = _declare(tmp_path / "site", "xferdiag-toy-modalities", "tests.toy_modalities.sequence:register")
    tiny = _toy_sequence(tmp_path)
    env = {**ENV, "PYTHONPATH": os.pathsep.join([str(site), str(Path(__file__).resolve().parents[1])])}

    def fresh(*argv) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "xferdiag", *map(str, argv)], cwd=tmp_path, env=env, text=True,
                              capture_output=True, timeout=300)

    trained = fresh("finetune", *tiny.finetune, "--epochs", "1", "--seeds", "2", "--threads", "1", "--quiet", "--out", tmp_path / "run")
    rd = RunDir(tmp_path / "run")
    assert trained.returncode == 0 and json.loads(rd.data_json.read_text())["kind"] == "sequence", trained.stderr
    assert json.loads(rd.verdict_json.read_text())["seeds"] == [0, 1]
    refused = fresh("explain", tmp_path / "run", "--n", "2", "--quiet")
    one_line(refused.returncode, refused.stderr, "'explain' is not available for sequence data yet")


def test_a_broken_modality_plug_in_a_package_declares_ends_in_one_line_naming_it(tmp_path, monkeypatch):
    from xferdiag.modalities import descriptor

    monkeypatch.syspath_prepend(str(_declare(tmp_path, "broken", "tests.toy_modalities.nowhere:register")))
    monkeypatch.setattr(descriptor, "_looked", [])  # look again, with the package on the path
    assert describe_modality("image") is DESCRIPTORS["image"]  # a built-in kind looks for no plug-in
    with pytest.raises(ConfigError, match=r"^modality plug-in 'broken' \(tests.toy_modalities.nowhere:register\) does not load: No module"):
        describe_modality("broken")
