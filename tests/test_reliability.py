"""Reliability under faults and hostile files (issue 8): the tests really do the bad thing.

SIGKILL a training run and resume it; SIGKILL writers at chosen moments; hold a run directory's
lock from another process; hand xferdiag pickles that would run code; train until the loss blows
up. Each checks what the user is promised in docs/guarantees.md.
"""

from __future__ import annotations

import ast
import errno
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.cli_helpers import ENV, CliBatch, one_line_error, run_cli_batch, tree_state, xferdiag
from xferdiag import rundir
from xferdiag.errors import CheckpointError, InputError, RunDirError

REPO = Path(__file__).resolve().parents[1]
FAST = ["--model", "builtin:digits-cnn", "--seeds", "1", "--threads", "1", "--device", "cpu", "--quiet",
        "--checkpoint-every", "0"]  # a checkpoint after every epoch: the kill and divergence tests look for them


class _Evil:
    """Unpickling this runs code: it creates ``marker``."""

    def __init__(self, marker):
        self.marker = Path(marker)

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, digits_checkpoint) -> Path:
    """A small real run (both arms, one seed) with its analysis, to copy and damage."""
    from xferdiag.commands.analyze import analyze_run
    from xferdiag.commands.finetune import finetune
    from xferdiag.config import RunConfig

    out = tmp_path_factory.mktemp("reliability") / "run"
    config = RunConfig(data="digits:rotated", source_data="digits:upright", model="builtin:digits-cnn",
                       pretrained_checkpoint=str(digits_checkpoint), epochs=1, seeds=1, shots=[3], device="cpu", threads=1)
    finetune(config, out, quiet=True)
    analyze_run(out, max_samples=80, n_permutations=20, quiet=True)
    return out


def copy_run(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest)
    return dest


# --- 1. interruption: SIGKILL mid-epoch, resume, same numbers ---------------------------------------------------------------

def _wait_for(predicate, alive, timeout: float = 300.0) -> bool:
    """Poll until ``predicate()`` (True) or ``alive()`` turns false (then: the predicate's last word)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if not alive():
            return predicate()
        time.sleep(0.002)
    raise AssertionError("timed out waiting")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _history_without_seconds(path: Path) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rundir.read_csv(path)]


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_uninterrupted_run(tmp_path, digits_checkpoint):
    args = ["finetune", "--data", "digits:rotated", "--pretrained-checkpoint", digits_checkpoint, *FAST,
            "--epochs", "8", "--shots", "20", "--batch-size", "16"]
    full, cut = tmp_path / "uninterrupted", tmp_path / "interrupted"
    batch = CliBatch([([*args, "--out", full], tmp_path), ([*args, "--out", cut], tmp_path)], workers=2)
    victim = batch.pid(1)
    # the first per-epoch checkpoint exists: the next epoch is under way; kill it in the middle
    assert _wait_for(lambda: any(cut.glob("arms/*/seed-0/checkpoint.pt")), lambda: _alive(victim) and not (cut / "verdict.json").exists())
    time.sleep(0.05)
    os.kill(victim, signal.SIGKILL)
    baseline, killed = batch.results()
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert baseline.returncode == 0, baseline.stderr
    assert not (cut / "verdict.json").exists(), "the run finished before it was killed"
    assert (cut / ".lock").read_text() == str(victim), "a killed run leaves its lock file behind (recovered below)"
    for checkpoint in cut.glob("arms/*/seed-0/checkpoint.pt"):  # what the resume starts from
        assert 1 <= torch.load(checkpoint, weights_only=True)["epoch"] < 8

    resumed = xferdiag("finetune", "--resume", cut, "--quiet", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr

    assert not (cut / ".lock").exists() and not list(cut.glob("arms/*/seed-0/checkpoint.pt"))
    for arm in ("transfer", "scratch"):
        a, b = full / "arms" / arm / "seed-0", cut / "arms" / arm / "seed-0"
        ma, mb = rundir.read_json(a / "metrics.json"), rundir.read_json(b / "metrics.json")
        assert ma["test"] == mb["test"] and ma["val"] == mb["val"], arm
        assert ma["epochs_run"] == mb["epochs_run"] == 8 and ma["best_epoch"] == mb["best_epoch"]
        pa, pb = rundir.read_npz(a / "predictions.npz"), rundir.read_npz(b / "predictions.npz")
        assert pa.keys() == pb.keys()
        for key in pa:
            np.testing.assert_array_equal(pa[key], pb[key], err_msg=f"{arm} {key}")
        assert _history_without_seconds(a / "history.csv") == _history_without_seconds(b / "history.csv")
        assert torch.equal(torch.cat([v.flatten().float() for v in torch.load(a / "model.pt", weights_only=True).values()]),
                           torch.cat([v.flatten().float() for v in torch.load(b / "model.pt", weights_only=True).values()]))
    assert rundir.read_json(full / "verdict.json") == rundir.read_json(cut / "verdict.json")


# --- 2. atomic writes: SIGKILL at exact moments of a write --------------------------------------------------------------

KILL_DURING_WRITE = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    from xferdiag import rundir

    kind, moment, path = sys.argv[1], sys.argv[2], sys.argv[3]
    real = {"fsync": os.fsync, "replace": os.replace}

    def die(name):
        def wrapped(*args):
            if name == "replace" and moment == "after-replace":
                real["replace"](*args)
            os.kill(os.getpid(), signal.SIGKILL)
        return wrapped

    if moment == "fsync":
        os.fsync = die("fsync")          # the new data is in the temporary file, not yet flushed or renamed
    else:
        os.replace = die("replace")      # just before / just after the rename
    new = np.arange(50_000, dtype=np.float64)
    if kind == "json":
        rundir.write_json(path, {"version": "new", "values": new.tolist()})
    else:
        rundir.write_npz(path, version=np.array("new"), values=new)
""")


def _version(path: Path, kind: str) -> str:
    """'old' or 'new' for a complete file; anything half-written fails to parse here."""
    if kind == "json":
        data = json.loads(path.read_text())
        assert data["version"] != "new" or len(data["values"]) == 50_000
        return data["version"]
    data = rundir.read_npz(path)
    assert str(data["version"]) != "new" or data["values"].shape == (50_000,)
    return str(data["version"])


@pytest.mark.parametrize("kind", ["json", "npz"])
def test_killed_writer_leaves_old_or_new_complete_file(tmp_path, kind):
    expected = {"fsync": "old", "replace": "old", "after-replace": "new"}
    for moment, version in expected.items():
        path = tmp_path / f"{moment}.{kind}"
        if kind == "json":
            rundir.write_json(path, {"version": "old", "values": [1, 2, 3]})
        else:
            rundir.write_npz(path, version=np.array("old"), values=np.arange(3.0))
        result = subprocess.run([sys.executable, "-c", KILL_DURING_WRITE, kind, moment, str(path)], capture_output=True,
                                text=True, env=ENV, cwd=REPO, timeout=120)
        assert result.returncode == -signal.SIGKILL, result.stderr
        assert _version(path, kind) == version, moment
    # what a kill leaves is at most hidden temporary files, never a partial file under the real name
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
    assert all(name.endswith(".tmp") for name in leftovers), leftovers


def _file_is_whole(path: Path) -> bool:
    if path.suffix == ".json":
        json.loads(path.read_text())
    elif path.suffix == ".npz":
        rundir.read_npz(path)
    elif path.suffix == ".html":
        text = path.read_text()
        assert text.rstrip().endswith("</html>"), path
    return True


@pytest.mark.slow
def test_killing_analyze_and_report_mid_write_keeps_every_file_whole(tmp_path, finished_run):
    from xferdiag.api import build_report

    build_report(finished_run, compute=False, quiet=True)  # an old report.html to protect
    analyze = ["--force", "--seed", "1", "--max-samples", "80", "--permutations", "20", "--quiet"]

    def stamp(path: Path):
        return (path.stat().st_ino, path.stat().st_mtime_ns) if path.exists() else None

    def temporary_in(folder: Path, prefix: str = "."):
        return lambda: any(p.name.startswith(prefix) and p.name.endswith(".tmp") for p in folder.iterdir())

    def replaced(path: Path):
        old = stamp(path)
        return lambda: stamp(path) != old

    runs = {name: copy_run(finished_run, tmp_path / name) for name in ("tmp", "features", "shift", "report", "explain")}
    plans = {  # command, the moment to kill it
        "tmp": (["analyze", runs["tmp"], *analyze], temporary_in(runs["tmp"] / "analysis")),  # a write in progress
        "features": (["analyze", runs["features"], *analyze], replaced(runs["features"] / "analysis" / "features.npz")),
        "shift": (["analyze", runs["shift"], *analyze], replaced(runs["shift"] / "analysis" / "shift.json")),
        "report": (["report", runs["report"], "--no-compute", "--quiet"], temporary_in(runs["report"], ".report.html.")),
        "explain": (["report", runs["explain"], "--quiet"], lambda: (runs["explain"] / "explanations" / "maps.npz").exists()),
    }
    old = {name: tree_state(run) for name, run in runs.items()}
    batch = CliBatch([(command, tmp_path) for command, _ in plans.values()], workers=len(plans))

    def watch(index: int, trigger) -> None:
        pid = batch.pid(index)
        if _wait_for(trigger, lambda: _alive(pid)):
            os.kill(pid, signal.SIGKILL)

    threads = [threading.Thread(target=watch, args=(i, trigger)) for i, (_, trigger) in enumerate(plans.values())]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = dict(zip(plans, (r.returncode for r in batch.results())))
    # these moments come with seconds of work still to do: the kill certainly landed before the end
    assert statuses["features"] == statuses["explain"] == -signal.SIGKILL, statuses

    for name, run in runs.items():
        now = tree_state(run)
        for rel, digest in now.items():
            path = run / rel
            if digest == "dir" or path.name.endswith(".tmp") or path.name == ".lock":
                continue
            if old[name].get(rel) != digest:  # not the old version: then a complete new one
                assert _file_is_whole(path), f"{name}: {rel}"
        missing = [rel for rel in old[name] if rel not in now]
        assert not missing, f"{name}: files disappeared: {missing}"
    explanations = runs["explain"] / "explanations"
    if (explanations / "index.json").exists():  # written last: its presence promises complete maps
        assert _file_is_whole(explanations / "maps.npz")

    # the next run takes over the dead process's lock and finishes the job
    rerun = run_cli_batch([(["analyze", runs["tmp"], "--max-samples", "80", "--permutations", "20", "--quiet"], tmp_path),
                           (["report", runs["report"], "--no-compute", "--quiet"], tmp_path)])
    for result in rerun:
        assert result.returncode == 0, result.stderr
    assert _file_is_whole(runs["report"] / "report.html")


def test_every_writer_goes_through_the_atomic_helpers():
    """No module but xferdiag/atomic.py opens files for writing or saves in place; buffers and atomic temporaries are fine."""
    offenders = []
    for path in sorted((REPO / "xferdiag").rglob("*.py")):
        if path == REPO / "xferdiag" / "atomic.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            first = ast.unparse(node.args[0]) if node.args else ""
            second = ast.unparse(node.args[1]) if len(node.args) > 1 else ""
            where = f"{path.relative_to(REPO)}:{node.lineno}"
            if name == "open" and any(m in second for m in "wax") and first not in ("tmp",):
                offenders.append(f"{where} open(..., {second})")
            elif name in ("write_text", "write_bytes", "to_csv", "dump") and isinstance(func, ast.Attribute) \
                    and ast.unparse(func.value) not in ("rundir",):
                offenders.append(f"{where} .{name}()")
            elif isinstance(func, ast.Attribute) and (
                    name in ("savez", "savez_compressed", "savefig", "imsave", "savetxt")
                    or (name == "save" and (ast.unparse(func.value) in ("torch", "np", "numpy")
                                            or "im" in ast.unparse(func.value).lower()))):  # PIL images; Report.save is atomic
                target = second if ast.unparse(func.value) == "torch" else first
                if target not in ("tmp", "buffer", "buf", "io.BytesIO()"):
                    offenders.append(f"{where} {ast.unparse(func)}({target}, ...)")
    assert not offenders, "write through xferdiag.rundir (write_json/write_npz) or xferdiag.atomic (atomic_path):\n" + "\n".join(offenders)


def test_disk_full_is_a_clean_error_and_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    rundir.write_json(path, {"old": True})

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(RunDirError, match="No space left on device"):
        rundir.write_json(path, {"old": False})
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_atomic_files_get_ordinary_permissions(tmp_path):
    rundir.write_json(tmp_path / "a.json", {})
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o666 & ~mask


# --- 3. locks ----------------------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_second_writer_stops_with_the_owner_pid(tmp_path, finished_run):
    run = copy_run(finished_run, tmp_path / "run")
    before = tree_state(run)
    jobs = [(["analyze", run, "--quiet"], tmp_path), (["explain", run, "--n", "1", "--quiet"], tmp_path),
            (["report", run, "--quiet"], tmp_path), (["report", run, "--no-compute", "--quiet"], tmp_path),
            (["finetune", "--resume", run, "--quiet"], tmp_path)]
    with rundir.locked(run):
        results = run_cli_batch(jobs)
        assert (run / ".lock").read_text() == str(os.getpid())
    for (argv, _), result in zip(jobs, results):
        assert one_line_error(result, f"in use by process {os.getpid()}") is None, (argv, result.stderr)
    assert not (run / ".lock").exists()
    assert tree_state(run) == before


def test_lock_of_a_killed_process_is_recovered(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom xferdiag.rundir import locked\n"
                               "with locked(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(300)\n", str(tmp_path)],
                              stdout=subprocess.PIPE, text=True, env=ENV, cwd=REPO)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunDirError, match=f"in use by process {holder.pid}"), rundir.locked(tmp_path):
            pass
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    finally:
        holder.kill()
        holder.stdout.close()
    assert (tmp_path / ".lock").read_text() == str(holder.pid)  # left behind by the dead process
    with rundir.locked(tmp_path):
        assert (tmp_path / ".lock").read_text() == str(os.getpid())
    assert not (tmp_path / ".lock").exists()


def test_lock_is_reentrant_in_a_thread_and_exclusive_between_threads(tmp_path):
    errors = []

    def other():
        try:
            with rundir.locked(tmp_path):
                pass
        except RunDirError as exc:
            errors.append(str(exc))

    with rundir.locked(tmp_path):
        with rundir.locked(tmp_path):  # report runs analyze under its own lock
            pass
        assert (tmp_path / ".lock").exists()
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert len(errors) == 1 and "in use" in errors[0]
    with rundir.locked(tmp_path):  # free again
        pass


# --- 4 and 5. diverging runs, non-finite features, untrusted files ------------------------------------------------------------

def _evil_checkpoint(path: Path, marker: Path, raw: bool = False) -> Path:
    if raw:  # a legacy (non-zip) pickle, protocol 2: a GLOBAL opcode naming the function to call
        with open(path, "wb") as fh:
            pickle.dump({"stem.0.weight": _Evil(marker)}, fh, protocol=2)
    else:
        torch.save({"stem.0.weight": torch.zeros(1), "payload": _Evil(marker)}, path)
    return path


@pytest.mark.parametrize("raw", [False, True], ids=["torch.save", "raw-pickle"])
def test_load_state_dict_refuses_code_and_never_runs_it(tmp_path, raw):
    from xferdiag.models import load_state_dict

    marker = tmp_path / "marker"
    with pytest.raises(CheckpointError, match="refused to load"):
        load_state_dict(_evil_checkpoint(tmp_path / "evil.pt", marker, raw=raw))
    assert not marker.exists()


@pytest.mark.slow
def test_hostile_files_are_refused_through_the_command_line(tmp_path, finished_run, digits_checkpoint):
    marker = tmp_path / "marker"
    evil_pretrained = _evil_checkpoint(tmp_path / "pretrained.pt", marker)
    evil_raw = _evil_checkpoint(tmp_path / "raw.pt", marker, raw=True)

    model_pt = copy_run(finished_run, tmp_path / "model-pt")
    _evil_checkpoint(model_pt / "arms" / "transfer" / "seed-0" / "model.pt", marker)

    resume = copy_run(finished_run, tmp_path / "resume")  # an interrupted seed whose checkpoint.pt is hostile
    seed = resume / "arms" / "scratch" / "seed-0"
    (seed / "metrics.json").unlink()
    (resume / "verdict.json").unlink()
    _evil_checkpoint(seed / "checkpoint.pt", marker, raw=True)

    pickled_npz = {}
    for command in ("explain", "report"):
        run = pickled_npz[command] = copy_run(finished_run, tmp_path / f"npz-{command}")
        preds = run / "arms" / "transfer" / "seed-0" / "predictions.npz"
        arrays = dict(np.load(preds))
        np.savez(preds, **{**arrays, "labels": np.array([_Evil(marker)] * len(arrays["labels"]), dtype=object)})
        (run / "verdict.json").unlink()

    nan_model = copy_run(finished_run, tmp_path / "nan-model")
    weights = torch.load(nan_model / "arms" / "transfer" / "seed-0" / "model.pt", weights_only=True)
    first = next(k for k, v in weights.items() if v.is_floating_point() and v.ndim > 1)
    weights[first][:] = float("nan")
    torch.save(weights, nan_model / "arms" / "transfer" / "seed-0" / "model.pt")

    before = tree_state(tmp_path)
    ft = ["finetune", "--data", "digits:rotated", *FAST, "--epochs", "1", "--shots", "3"]
    cases = {
        "pretrained checkpoint that runs code": ([*ft, "--pretrained-checkpoint", evil_pretrained, "--out", tmp_path / "o1"],
                                                 "refused to load"),
        "legacy pickle checkpoint": ([*ft, "--pretrained-checkpoint", evil_raw, "--out", tmp_path / "o2"], "refused to load"),
        "model.pt in a run directory": (["analyze", model_pt, "--quiet"], "refused to load"),
        "checkpoint.pt to resume from": (["finetune", "--resume", resume, "--quiet"], "checkpoint.pt"),
        "pickled predictions (explain)": (["explain", pickled_npz["explain"], "--n", "1", "--methods", "gradcam", "--quiet"],
                                          "predictions.npz"),
        "pickled predictions (report)": (["report", pickled_npz["report"], "--quiet"], "predictions.npz"),
        "NaN weights in model.pt": (["analyze", nan_model, "--force", "--quiet"], "fine-tuned model's weights"),
    }
    results = run_cli_batch([(argv, tmp_path) for argv, _ in cases.values()])
    problems = [f"{name}: {one_line_error(r, needle)}\n{r.stderr[-800:]}" for (name, (_, needle)), r in zip(cases.items(), results)
                if one_line_error(r, needle)]
    assert not problems, "\n".join(problems)
    assert not marker.exists(), "a hostile pickle was executed"
    assert tree_state(tmp_path) == before


@pytest.mark.slow
def test_diverging_run_stops_and_keeps_the_last_good_checkpoint(tmp_path, digits_checkpoint):
    out = tmp_path / "run"
    result = xferdiag("finetune", "--data", "digits:rotated", "--pretrained-checkpoint", digits_checkpoint, *FAST,
                      "--epochs", "6", "--shots", "10", "--lr", "1e6", "--baseline", "none", "--out", out, cwd=tmp_path)
    assert one_line_error(result, "lower --lr") is None, result.stderr
    message = result.stderr.strip()
    assert any(f"became {what}" in message for what in ("nan", "inf", "NaN or infinite")), message
    assert "last good checkpoint (epoch" in message, message
    kept = int(message.split("last good checkpoint (epoch ")[1].split(")")[0])
    state = torch.load(out / "arms" / "transfer" / "seed-0" / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == kept >= 1
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert all(np.isfinite(row["val_loss"]) and np.isfinite(row["train_loss"]) for row in state["history"])
    assert not (out / "arms" / "transfer" / "seed-0" / "metrics.json").exists()


def test_non_finite_features_name_their_source():
    from xferdiag.commands.analyze import _check_finite

    features = np.ones((4, 3), dtype=np.float32)
    bad = features.copy()
    bad[1, 2] = np.inf
    _check_finite({"pretrained__source__penultimate": features, "source__labels": np.arange(4)})
    with pytest.raises(InputError, match="finetuned model on the target data at layer block2 contain 1 NaN"):
        _check_finite({"pretrained__target__block2": features, "finetuned__target__block2": bad})
