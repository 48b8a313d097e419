"""The catch-up sweep (``--scratch-epochs auto``): TOST on hand-made per-seed gaps, the config and the arms it trains.

Known answers: five seeds' gaps (transfer - scratch) with mean 1 point. By the paired t over seeds, the 90% interval
(TOST at alpha 0.05) is mean +- t(0.95, 4) * sd / sqrt(5), with t(0.95, 4) = 2.13185."""

from __future__ import annotations

import numpy as np
import pytest

from xferdiag.catchup import CATCH_UP_MARGIN, catch_up, equivalent
from xferdiag.config import RunConfig
from xferdiag.errors import ConfigError
from xferdiag.negative import paired_metric_verdict
from xferdiag.sweeps import is_scratch, scratch_arms

SCRATCH = np.array([0.80, 0.82, 0.78, 0.81, 0.79])
TIGHT = SCRATCH + [0.01, 0.00, 0.02, 0.01, 0.01]   # sd 0.70711 points: 90% interval 1 +- 0.6742 points
LOOSE = SCRATCH + [0.03, -0.01, 0.02, 0.00, 0.01]  # sd 1.58114 points: 90% interval 1 +- 1.5074 points


def _tost_interval(transfer: np.ndarray) -> list[float]:
    return paired_metric_verdict(transfer, SCRATCH, alpha=2 * 0.05).to_dict()["ci95"]


def test_tost_is_the_90_percent_interval_inside_the_margin():
    tight = _tost_interval(TIGHT)
    assert tight == pytest.approx([0.01 - 0.0067420, 0.01 + 0.0067420], abs=1e-6)
    assert equivalent(tight, CATCH_UP_MARGIN)  # within 2 points ...
    assert paired_metric_verdict(TIGHT, SCRATCH).verdict == "positive"  # ... though the 95% interval excludes 0
    loose = _tost_interval(LOOSE)
    assert loose == pytest.approx([0.01 - 0.015074, 0.01 + 0.015074], abs=1e-6)
    assert loose[0] < 0 < loose[1]  # includes 0, which shows no catching up ...
    assert not equivalent(loose, CATCH_UP_MARGIN)  # ... for it straddles +2 points
    assert equivalent(loose, 0.026) and not equivalent([None, 0.0], 1.0) and not equivalent([-0.02, 0.0], 0.02)


def test_catch_up_names_the_first_equivalent_budget_else_the_gap_at_the_largest():
    rows = [{"arm": arm, "multiple": m, "gap": 0.01, "tost_interval": interval}
            for arm, m, interval in (("scratch", 1, _tost_interval(LOOSE)), ("scratch-2x", 2, _tost_interval(TIGHT)),
                                     ("scratch-4x", 4, [-0.001, 0.004]))]
    out = catch_up(rows, 0.02, 0.05)
    assert [r["equivalent"] for r in out["budgets"]] == [False, True, True]
    assert (out["caught_up_at"], out["multiple"], out["tost_level"]) == ("scratch-2x", 2, pytest.approx(0.9))
    never = catch_up(rows[:1] + [{**rows[0], "arm": "scratch-4x", "multiple": 4, "gap": 0.05}], 0.02, 0.05)
    assert never["caught_up_at"] is None and never["multiple"] is None and never["gap_at_largest"] == 0.05


def test_scratch_epochs_auto_trains_three_scratch_budgets():
    assert scratch_arms(RunConfig(scratch_epochs="auto").to_dict()) == {"scratch": 1, "scratch-2x": 2, "scratch-4x": 4}
    assert scratch_arms(RunConfig(scratch_epochs=8).to_dict()) == {"scratch": 1}
    assert is_scratch("scratch-4x") and is_scratch("scratch") and not is_scratch("transfer-lp-ft")
    assert RunConfig.from_dict(RunConfig(scratch_epochs="auto").to_dict()).scratch_epochs == "auto"


@pytest.mark.parametrize("values, needle", [
    (dict(scratch_epochs="twice"), "scratch_epochs: must be an integer >= 1 or 'auto'"),
    (dict(scratch_epochs=0), "scratch_epochs: must be an integer >= 1"),
    (dict(scratch_epochs="auto", baseline="none"), "needs --baseline scratch"),
    (dict(catch_up_margin=0.0), "catch_up_margin: must be an accuracy gap in (0, 1)"),
])
def test_bad_catch_up_settings_say_what_is_wrong(values, needle):
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        RunConfig(**values)


@pytest.mark.slow  # one command-line process trains five arm-seeds on the digits demo data: about 15 s on a busy 2-core box
def test_the_catch_up_sweep_on_the_digits_demo_data(tmp_path, digits_checkpoint):
    from cli_helpers import run_cli_batch

    from xferdiag.report.html import render_report
    from xferdiag.rundir import RunDir, read_json

    argv = ["finetune", "--data", "digits:rotated", "--model", "builtin:digits-cnn", "--pretrained-checkpoint",
            str(digits_checkpoint), "--seeds", "2", "--epochs", "1", "--shots", "5", "--test-fraction", "0.3",
            "--batch-size", "16", "--lr", "0.003", "--threads", "1", "--quiet", "--scratch-epochs", "auto",
            "--catch-up-margin", "0.05", "--out", "run"]
    (result,) = run_cli_batch([(argv, tmp_path)])
    assert result.returncode == 0, result.stderr
    run = RunDir(tmp_path / "run")
    verdict = read_json(run.verdict_json)
    catch_up = verdict["catch_up"]
    rows = catch_up["budgets"]
    assert [(r["arm"], r["multiple"], r["budget"]["epochs"]) for r in rows] == [("scratch", 1, 1), ("scratch-2x", 2, 2),
                                                                                 ("scratch-4x", 4, 4)]
    assert (rows[0]["gap"], rows[0]["ci95"]) == (verdict["gap"], verdict["ci95"])  # 1x is the usual verdict's scratch arm

    def accuracy(arm: str) -> float:
        scores = []
        for seed in (0, 1):
            with np.load(run.seed(arm, seed).predictions_npz) as npz:
                scores.append(float(np.mean(npz["predictions"] == npz["labels"])))
        return float(np.mean(scores))

    for row in rows:
        assert row["gap"] == pytest.approx(accuracy("transfer") - accuracy(row["arm"]))
        low, high = row["tost_interval"]
        assert row["ci95"][0] < low < row["gap"] < high < row["ci95"][1]  # the 90% interval sits inside the 95% one
        assert row["equivalent"] == (low > -0.05 and high < 0.05)
    first = next((r for r in rows if r["equivalent"]), None)
    assert (catch_up["margin"], catch_up["caught_up_at"]) == (0.05, first["arm"] if first else None)
    html = render_report(run.root, tmp_path / "report.html").html
    assert 'id="catch-up"' in html and "Catch-up sweep, scratch at 1x (1 epoch), 2x (2 epochs), 4x (4 epochs)" in html
    assert ("caught up at" if first else "not shown to catch up") in html and "±5 points" in html
