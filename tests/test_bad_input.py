"""Bad input, systematically, through the real command line (issue 8).

Every case is its own ``xferdiag`` process (forked from one driver that imported torch once, see
tests/cli_helpers.py) and must end with exactly one line on stderr that names the problem, exit
code 2, no traceback, and a file tree that is byte for byte what it was before: nothing existing
changed, nothing half-made left behind.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.cli_helpers import one_line_error, run_cli_batch, tree_state, xferdiag
from tests.conftest import make_image_folder

pytestmark = pytest.mark.slow

MARKER_NAME = "pwned-by-data"
LATE_OUT = "o-late"


class _Evil:
    """Unpickling this runs code: it would create the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, digits_checkpoint):
    """Inputs for every case, plus one real finished run directory to damage in copies."""
    from xferdiag.commands.finetune import finetune
    from xferdiag.config import RunConfig

    root = tmp_path_factory.mktemp("bad-input")
    run = finetune(RunConfig(data="digits:rotated", model="builtin:digits-cnn", pretrained_checkpoint=str(digits_checkpoint),
                             epochs=1, seeds=1, shots=[3], device="cpu", threads=1), root / "run", quiet=True)
    return root, Path(digits_checkpoint), run


def _run_copy(run: Path, dest: Path, edit=None) -> Path:
    shutil.copytree(run, dest)
    if edit:
        edit(dest)
    return dest


def _edit_json(path: Path, **changes):
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def build_cases(root: Path, checkpoint: Path, run: Path) -> dict[str, tuple[list, str]]:
    """name -> (argv, a phrase the one error line must contain)."""
    w = root / "inputs"
    w.mkdir()
    ft = ["finetune", "--model", "builtin:digits-cnn", "--pretrained-checkpoint", checkpoint, "--epochs", "1", "--seeds", "1",
          "--threads", "1", "--device", "cpu", "--quiet"]
    digits = [*ft, "--data", "digits:rotated"]

    (w / "empty").mkdir()
    broken = make_image_folder(w / "broken", per_class=4)
    (broken / "circle" / "0.png").write_bytes(b"not an image at all")
    truncated = make_image_folder(w / "truncated", per_class=4)
    data = (truncated / "square" / "1.png").read_bytes()
    (truncated / "square" / "1.png").write_bytes(data[: len(data) * 2 // 3])
    late = make_image_folder(w / "late", per_class=6, size=64)
    noise = Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64), dtype=np.uint8))
    jpeg = io.BytesIO()
    noise.save(jpeg, "JPEG", quality=95)
    (late / "circle" / "noise.jpg").write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) * 3 // 5])  # header intact, pixels cut
    make_image_folder(w / "one", classes=("only",), per_class=4)
    for split, classes in (("train", ("a", "b")), ("val", ("a", "b")), ("test", ("a", "c"))):
        make_image_folder(w / "splits" / split, classes=classes, per_class=3)
    np.savez(w / "pickled.npz", x=np.array([_Evil(root / MARKER_NAME)], dtype=object), y=np.array([0]))

    torch.save({"conv.weight": torch.zeros(3, 3)}, w / "wrong.pt")
    (w / "garbage.pt").write_bytes(np.random.default_rng(0).bytes(400))
    (w / "unknown.json").write_text(json.dumps({"data": "digits:rotated", "epochs": 1, "colour": "red"}))
    (w / "wrongtype.json").write_text(json.dumps({"data": "digits:rotated", "seeds": "three"}))
    (w / "corrupt.json").write_text('{"epochs": 1,')
    (w / "a_file").write_text("I am a file, not a folder\n")
    text = text_cases(w, root / "tiny-bert")

    schema = _run_copy(run, w / "run-schema", lambda d: _edit_json(d / "run.json", schema=99))
    corrupt_run = _run_copy(run, w / "run-corrupt", lambda d: (d / "run.json").write_text('{"schema": 1, "config": '))
    layers = _run_copy(run, w / "run-layers")
    bad_npz = _run_copy(run, w / "run-npz", lambda d: (d / "arms/transfer/seed-0/predictions.npz").write_bytes(b"PK\x03\x04broken"))
    methods = _run_copy(run, w / "run-methods")
    metrics = _run_copy(run, w / "run-metrics", lambda d: (d / "arms/scratch/seed-0/metrics.json").write_text('{"test": {"accur'))
    report_a = _run_copy(run, w / "run-report-a")
    report_b = _run_copy(run, w / "run-report-b")
    compare = _run_copy(run, w / "run-compare")

    return {
        "missing data folder": ([*ft, "--data", w / "nope", "--out", w / "o1"], "not found"),
        "empty data folder": ([*ft, "--data", w / "empty", "--out", w / "o2"], "empty"),
        "unreadable image": ([*ft, "--data", broken, "--out", w / "o3"], "0.png"),
        "truncated image": ([*ft, "--data", truncated, "--out", w / "o4"], "1.png"),
        # found only when decoded, inside a DataLoader worker: still one line (the run folder it began stays)
        "truncated image read by a loader worker": ([*ft, "--data", late, "--workers", "1", "--out", w / LATE_OUT], "noise.jpg"),
        "one class only": ([*ft, "--data", w / "one", "--out", w / "o5"], "at least 2"),
        "classes differ between splits": ([*ft, "--data", w / "splits", "--out", w / "o6"], "classes differ"),
        "pickled object array as data": ([*ft, "--data", w / "pickled.npz", "--out", w / "o7"], "pickled.npz"),
        "checkpoint of another model": ([*ft[:4], w / "wrong.pt", *ft[5:], "--data", "digits:rotated", "--out", w / "o8"], "does not fit"),
        "checkpoint that is not one": ([*ft[:4], w / "garbage.pt", *ft[5:], "--data", "digits:rotated", "--out", w / "o9"], "garbage.pt"),
        "config with unknown key": ([*ft, "--config", w / "unknown.json", "--out", w / "o10"], "colour"),
        "config with wrong type": (["finetune", "--config", w / "wrongtype.json", "--out", w / "o11"], "wrongtype.json: seeds"),
        "config that is not JSON": ([*ft, "--config", w / "corrupt.json", "--out", w / "o12"], "cannot parse"),
        "negative epochs": ([*digits, "--epochs", "-2", "--out", w / "o13"], "epochs"),
        "zero shots": ([*digits, "--shots", "0", "--out", w / "o14"], "shots"),
        "zero seeds": ([*digits, "--seeds", "0", "--out", w / "o15"], "seeds"),
        "unknown device": ([*digits, "--device", "quantum", "--out", w / "o16"], "device"),
        "output below a file": ([*digits, "--out", w / "a_file" / "run"], "is a file"),
        "output on a virtual file system": ([*digits, "--out", "/proc/xferdiag-run"], "/proc/xferdiag-run"),
        "resume a folder that is no run": (["finetune", "--resume", w / "empty"], "not a run directory"),
        "run directory from a newer schema": (["analyze", schema, "--quiet"], "upgrade xferdiag"),
        "corrupt run.json": (["analyze", corrupt_run, "--quiet"], "corrupt JSON"),
        "missing run directory": (["analyze", w / "no-run", "--quiet"], "not a directory"),
        "unknown layer": (["analyze", layers, "--layers", "conv9", "--quiet"], "conv9"),
        "corrupt predictions.npz": (["explain", bad_npz, "--methods", "gradcam", "--n", "2", "--quiet"], "predictions.npz"),
        "unknown explanation method": (["explain", methods, "--methods", "magic"], "magic"),
        "corrupt metrics.json": (["report", metrics, "--no-compute"], "metrics.json"),
        "report below a file": (["report", report_a, "--no-compute", "--out", w / "a_file" / "r.html"], "is a file"),
        "report on a virtual file system": (["report", report_b, "--no-compute", "--out", "/proc/xferdiag.html"], "cannot write"),
        "compare a missing run": (["compare", compare, w / "no-run", "--out", w / "c.html"], "no-run"),
        "zero explained examples": (["explain", methods, "--n", "0"], "--n"),
        "budget below one example": (["explain", methods, "--budget", "0.001", "--quiet"], "give at least --budget"),
        "budget that is no number": (["report", methods, "--budget", "soon"], "--budget"),
        "unknown demo scenario": (["demo", "--scenario", "nope", "--out", w / "d"], "scenario"),
        **text,
    }


def text_cases(w: Path, bert: Path) -> dict[str, tuple[list, str]]:
    """Text runs (issue 19): bad files, model directories xferdiag will not load, and texts that do not fit with
    truncation off; the tiny BERT's directory is made once for all of them."""
    from xferdiag.commands.textdemo import make_tiny_bert, write_jsonl

    make_tiny_bert(bert)
    ft = ["finetune", "--model", f"hf:{bert}", "--strategy", "linear-probe", "--epochs", "1", "--seeds", "1", "--threads", "1",
          "--device", "cpu", "--quiet", "--max-length", "8"]
    fits = [{"text": f"apple s{i}", "label": "apple"} for i in range(6)] + [{"text": f"river s{i}", "label": "river"} for i in range(6)]
    long = [{**row, "text": row["text"] + " s1 s2 s3 s4 s5 s6 s7"} for row in fits]  # 11 tokens: over 8
    write_jsonl(w / "long.jsonl", long)
    write_jsonl(w / "long-test.jsonl", [{**row, "split": split} for rows, split in ((fits, "train"), (long[:4], "test"))
                                        for row in rows])
    write_jsonl(w / "empty-text.jsonl", [*fits, {"text": "   ", "label": "river"}])
    write_jsonl(w / "no-label.jsonl", [{"text": row["text"], "class": row["label"]} for row in fits])
    (w / "latin1.jsonl").write_bytes(b"".join(f'{{"text": "caf\u00e9 {i}", "label": "{i % 2}"}}\n'.encode("latin-1")
                                              for i in range(12)))
    no_weights = shutil.copytree(bert, w / "bert-no-weights")
    (no_weights / "model.safetensors").unlink()
    remote = shutil.copytree(bert, w / "bert-remote")
    _edit_json(remote / "config.json", auto_map={"AutoModel": "modeling.MyModel"})
    write_jsonl(w / "fits.jsonl", fits)
    data = [*ft, "--data", w / "fits.jsonl"]
    return {
        "text row with an empty text": ([*ft, "--data", w / "empty-text.jsonl", "--out", w / "t1"], "row 13 has an empty text"),
        "text file without its label column": ([*ft, "--data", w / "no-label.jsonl", "--out", w / "t2"], "no column 'label'"),
        "text file that is not UTF-8": ([*ft, "--data", w / "latin1.jsonl", "--out", w / "t3"], "not UTF-8"),
        "model directory without weights": ([*data[:2], f"hf:{no_weights}", *data[3:], "--out", w / "t4"], "no .safetensors"),
        "model directory that needs remote code": ([*data[:2], f"hf:{remote}", *data[3:], "--out", w / "t5"], "never runs remote code"),
        "every text too long, truncation off": ([*ft, "--data", w / "long.jsonl", "--no-truncate", "--out", w / "t6"],
                                                "all 12 texts are longer than --max-length 8"),
        "test split too long, truncation off": ([*ft, "--data", w / "long-test.jsonl", "--no-truncate", "--out", w / "t7"],
                                                "the test split is empty"),
    }


def test_bad_input_table(workspace):
    root, checkpoint, run = workspace
    cases = build_cases(root, checkpoint, run)
    assert len(cases) >= 15
    before = tree_state(root)
    results = run_cli_batch([(argv, root) for argv, _ in cases.values()])
    failures = []
    for (name, (_argv, needle)), result in zip(cases.items(), results):
        problem = one_line_error(result, needle)
        if problem:
            failures.append(f"{name}: {problem}:\n{result.stderr[-1500:]}")
    assert not failures, "\n\n".join(failures)
    after = tree_state(root)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k)
                     and not k.startswith(f"inputs/{LATE_OUT}"))
    assert not changed, f"the failed commands changed files: {changed[:20]}"
    assert not (root / MARKER_NAME).exists(), "a pickled object in a data file was executed"


def test_unusual_image_modes_are_converted_with_one_warning(tmp_path, digits_checkpoint):
    """Grayscale with alpha, RGBA, palette and 16-bit images mixed in a folder train, with a count, not a refusal."""
    root = make_image_folder(tmp_path / "mixed", per_class=8)
    Image.new("RGBA", (20, 20), (200, 10, 10, 128)).save(root / "circle" / "rgba.png")
    Image.new("LA", (20, 20), (120, 255)).save(root / "circle" / "la.png")
    Image.new("P", (20, 20), 3).save(root / "square" / "palette.png")
    deep = (np.random.default_rng(0).random((20, 20)) * 60000).astype(np.uint16)
    Image.fromarray(deep).save(root / "square" / "deep.png")
    Image.new("RGB", (24, 18), (10, 200, 10)).save(root / "square" / "rgb.png")  # RGB needs no conversion warning
    result = xferdiag("finetune", "--data", root, "--model", "builtin:digits-cnn", "--pretrained-checkpoint", digits_checkpoint,
                      "--out", tmp_path / "run", "--epochs", "1", "--seeds", "1", "--threads", "1", "--device", "cpu", "--quiet",
                      "--test-fraction", "0.3", "--val-fraction", "0.2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # health warnings ("did not learn") are tested elsewhere
    warnings = [line for line in result.stderr.splitlines() if "warning" in line and "did not learn" not in line]
    assert len(warnings) == 1, result.stderr
    assert "4 of 21 images" in warnings[0] and "converted" in warnings[0], warnings[0]
    assert (tmp_path / "run" / "arms" / "transfer" / "seed-0" / "metrics.json").is_file()
