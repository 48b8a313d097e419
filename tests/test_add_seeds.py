"""``xferdiag finetune --resume RUN --seeds N``: a finished run gains seeds, the old ones untouched, and
its verdict becomes a second look (tests/test_sequential.py has the statistics)."""

from __future__ import annotations

import pytest
from cli_helpers import one_line_error, run_cli_batch

from xferdiag import api
from xferdiag.errors import ConfigError
from xferdiag.rundir import RunDir, read_json

SMALL = ["--data", "digits:rotated", "--model", "builtin:digits-cnn", "--shots", "5", "--epochs", "1",
         "--test-fraction", "0.3", "--batch-size", "16", "--lr", "3e-3", "--threads", "1", "--quiet"]


def _seed_files(run: RunDir, seeds) -> dict[str, tuple[int, bytes]]:
    """Every file of the given seeds of both arms: its modification time and content."""
    return {str(path.relative_to(run.root)): (path.stat().st_mtime_ns, path.read_bytes())
            for arm in ("transfer", "scratch") for seed in seeds for path in sorted(run.seed(arm, seed).path.iterdir())}


@pytest.mark.slow
def test_adding_seeds_trains_only_the_new_ones(tmp_path, digits_checkpoint):
    first = run_cli_batch([(["finetune", *SMALL, "--seeds", "2", "--min-effect", "0.05",
                             "--pretrained-checkpoint", str(digits_checkpoint), "--out", "run"], tmp_path)])
    assert first[0].returncode == 0, first[0].stderr
    run = RunDir(tmp_path / "run")
    before, verdict = _seed_files(run, (0, 1)), read_json(run.verdict_json)
    assert read_json(run.run_json)["config"]["min_effect"] == 0.05 and verdict["min_effect"] == 0.05
    assert [look["seeds"] for look in verdict["looks"]] == [2]

    results = run_cli_batch([(["finetune", "--resume", "run", "--seeds", "3", "--quiet"], tmp_path),
                             (["finetune", "--resume", "run", "--seeds", "2", "--quiet"], tmp_path),
                             (["finetune", "--resume", "run", "--quiet"], tmp_path)], workers=1)
    assert results[0].returncode == 0, results[0].stderr
    assert one_line_error(results[1], "--seeds: ") is None, results[1].stderr
    assert "has 3 seeds" in results[1].stderr
    assert results[2].returncode == 0, results[2].stderr
    assert _seed_files(run, (0, 1)) == before  # the old seeds were not trained again
    assert run.seed("transfer", 2).metrics_json.is_file() and run.seed("scratch", 2).metrics_json.is_file()
    assert read_json(run.run_json)["config"]["seeds"] == 3
    extended = read_json(run.verdict_json)
    assert extended["seeds"] == [0, 1, 2] and extended["alpha"] == 0.005
    assert [(look["seeds"], look["alpha"]) for look in extended["looks"]] == [(2, 0.05), (3, 0.005)]
    assert extended["looks"][0] == verdict["looks"][0]


def test_the_api_resumes_a_run_by_its_folder_with_seeds_only(tmp_path):
    with pytest.raises(ConfigError, match="give only seeds"):
        api.finetune(resume=tmp_path, epochs=3)
