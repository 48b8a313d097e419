"""The HTML report and the multi-run comparison, on synthetic run directories (tests/report_fixtures.py)."""

from __future__ import annotations

import csv
import html
import json
import re
import warnings
from pathlib import Path

import markupsafe
import numpy as np
import pytest
from report_fixtures import write_full_run, write_minimal_run
from scipy import stats

from xferdiag.errors import InputError, RunDirError
from xferdiag.pairwise import holm, welch
from xferdiag.report import Report, compare_table, render_compare, render_report
from xferdiag.report.compare import t_interval
from xferdiag.report.plots import layer_label
from xferdiag.report.recommend import Facts, recommend
from xferdiag.rundir import RunDir, read_json, write_json, write_npz

HOSTILE = "<img src=x onerror=alert(1)>"
TEMPLATES = Path(__file__).resolve().parents[1] / "xferdiag" / "report" / "templates"


@pytest.fixture(scope="module")
def full(tmp_path_factory) -> tuple[Path, Report]:
    run = write_full_run(tmp_path_factory.mktemp("full") / "run")
    return run, render_report(run)


def edit_json(path: Path, **changes) -> None:
    data = read_json(path)
    data.update(changes)
    write_json(path, data)


# --- one run ---------------------------------------------------------------------------------------

def test_full_report_has_every_section(full):
    run, report = full
    assert report.missing == []
    assert report.path == run / "report.html"
    assert (run / "report.html").read_text(encoding="utf-8") == report.html
    for section in ("verdict", "next", "setup", "curves", "seeds", "classes", "shift", "transferability",
                    "similarity", "explanations", "shots", "environment"):
        assert f'id="{section}"' in report.html, section
    assert 'id="missing"' not in report.html
    assert "Transfer helped: +" in report.html and "3 seeds)." in report.html
    assert "A classifier tells the domains apart 83% of the time" in report.html  # shift.json interpretation
    assert "needs the source head&#39;s class probabilities" in report.html  # not-applicable reason
    assert "LIME failed the sanity check" in report.html
    assert "xferdiag finetune --data digits --model resnet18" in report.html
    assert 'alt="CKA and weight change per layer"' in report.html  # layers that trained get their chart
    assert 'alt="MMD between source and target at each layer"' in report.html


def test_per_layer_table_shows_every_measure_and_dashes_what_an_older_file_lacks(full, tmp_path):
    _, report = full
    table = report.html.split('id="layer-shift"')[1].split("</table>")[0]
    assert "proxy A-distance (0 = indistinguishable" in table and "not down the column" in table
    # layer4 of the synthetic run: MMD² 0.08, adjusted p 0.006, proxy A 1.1, C2ST 77.5% (p 0.002), Fréchet 3.2
    assert re.search(r"<td>layer4</td><td class=\"num\">0\.08</td><td class=\"num\">0\.006</td><td class=\"num\">1\.1</td>"
                     r"<td class=\"num\">77\.5%</td><td class=\"num\">0\.002</td><td class=\"num\">3\.2</td>.*?shifted", table)
    run = write_full_run(tmp_path / "old")
    shift = read_json(RunDir(run).shift_json)
    edit_json(RunDir(run).shift_json, layers=[{k: v for k, v in row.items() if k in ("name", "mmd2", "p_value", "p_adjusted",
                                                                                   "shifted")} for row in shift["layers"]])
    old = render_report(run).html.split('id="layer-shift"')[1].split("</table>")[0]
    assert re.search(r"<td>layer4</td><td class=\"num\">0\.08</td><td class=\"num\">0\.006</td>(<td class=\"num\">—</td>){4}", old)


def test_full_report_recommends_from_evidence(full):
    _, report = full
    assert "Fine-tuning more layers may help further" in report.html  # positive + linear-probe
    assert "Pretraining matters most in the low-data regime" in report.html  # shots.json gap shrinks
    assert "Do not trust the LIME maps" in report.html


def test_a_score_note_is_shown_beside_its_value(tmp_path):
    run = write_full_run(tmp_path / "run")
    edit_json(RunDir(run).transferability_json, notes={"h_score": "at its ceiling of 3 (classes - 1)"})
    assert re.search(r"2\.1<.*?separate the target classes — <em>at its ceiling of 3 \(classes - 1\)</em>",
                     render_report(run).html, re.S)


@pytest.mark.parametrize("name, shown", [("encoder.encoder.layer.11", "…layer.11"), ("encoder.embeddings", "…embeddings"),
                                         ("layer4", "layer4"), ("features.3.0.block.1", "…3.0.block.1"),
                                         ("encoder.layers.encoder_layer_11", "…oder_layer_11"),
                                         ("a_name_longer_than_fourteen", "…than_fourteen")])
def test_layer_ticks_keep_the_end_of_dotted_names(name, shown):
    assert layer_label(name) == shown


def test_minimal_report_lists_what_is_missing(tmp_path):
    report = render_report(write_minimal_run(tmp_path / "run"))
    text = " ".join(report.missing)
    for part in ("verdict", "learning curves", "per-class", "domain shift", "transferability", "similarity",
                 "explanations"):
        assert part in text, part
    assert "xferdiag analyze" in text and "xferdiag explain" in text
    assert "Not in this report" in report.html
    for line in report.missing:
        assert str(markupsafe.escape(line)) in report.html
    assert "No scratch baseline was trained" in report.html
    assert (tmp_path / "run" / "report.html").is_file()


def test_missing_ok_false_raises_and_writes_nothing(tmp_path):
    run = write_minimal_run(tmp_path / "run")
    with pytest.raises(RunDirError, match="domain shift"):
        render_report(run, missing_ok=False)
    assert not (run / "report.html").exists()


def test_embedding_missing_is_listed(tmp_path):
    run = write_full_run(tmp_path / "run")
    (run / "analysis" / "embedding.npz").unlink()
    report = render_report(run)
    assert any("embedding" in m for m in report.missing)
    assert 'id="shift"' in report.html


@pytest.mark.parametrize("verdict, sentence", [
    ("negative", "Transfer hurt: "),
    ("inconclusive", "Transfer cannot be told apart from training from scratch"),
])
def test_verdict_sentences(tmp_path, verdict, sentence):
    run = write_full_run(tmp_path / "run")
    edit_json(RunDir(run).verdict_json, verdict=verdict, gap=-0.05 if verdict == "negative" else 0.01,
              ci95=[-0.08, -0.02] if verdict == "negative" else [-0.06, 0.08])
    report = render_report(run)
    assert sentence in report.html
    assert f'class="banner {verdict}"' in report.html
    if verdict == "negative":
        assert "Large domain shift and negative transfer" in report.html
    else:
        assert "add seeds or test data" in report.html


def test_hostile_strings_are_text(tmp_path):
    classes = [HOSTILE, "a & b", '"quoted"', "$x^2$ math", "normal"]
    run = write_full_run(tmp_path / "run", classes=classes)
    edit_json(RunDir(run).run_json, command=["xferdiag", "finetune", "--out", "</pre><script>alert(1)</script>"],
              config={"model": "<b>bold</b>", "strategy": "full", "data": "javascript:alert(1)"})
    report = render_report(run)
    assert HOSTILE not in report.html
    assert html.escape(HOSTILE) in report.html
    assert "<script" not in report.html.lower()
    assert "<b>bold</b>" not in report.html and "&lt;b&gt;bold&lt;/b&gt;" in report.html


def test_templates_never_mark_data_safe():
    for template in TEMPLATES.glob("*.html"):
        assert "|safe" not in template.read_text(encoding="utf-8").replace(" ", ""), template.name


def test_report_references_nothing_outside_itself(full):
    _, report = full
    without_data = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", report.html)
    assert not re.search(r"https?:|//|<script|<link|@import|url\(", without_data, re.IGNORECASE)
    sources = re.findall(r"""src\s*=\s*["']?([^"'\s>]*)""", report.html)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)


def test_report_size_with_realistic_gallery(tmp_path):
    run = write_full_run(tmp_path / "run", classes=[f"c{i}" for i in range(10)], n_test=300, epochs=20,
                         n_explained=8, size=32, channels=3)
    report = render_report(run)
    assert len(report.html.encode("utf-8")) < 5_000_000


def test_extra_arm_and_missing_map(tmp_path):
    run = write_full_run(tmp_path / "run")
    rd = RunDir(run)
    write_json(rd.seed_dir("partial", 0) / "metrics.json", {"test": {"accuracy": 0.8, "macro_f1": 0.79, "loss": 0.5}})
    maps = dict(np.load(rd.explanations / "maps.npz"))
    del maps["shap__scratch"]
    write_npz(rd.explanations / "maps.npz", **maps)
    report = render_report(run)
    assert ">partial</th>" in report.html
    assert "no map" in report.html


def test_save_and_explicit_out(tmp_path, full):
    run, report = full
    out = tmp_path / "elsewhere" / "r.html"
    again = render_report(run, out=out)
    assert again.path == out and out.read_text(encoding="utf-8").startswith("<!doctype html>")
    copy = report.save(tmp_path / "copy.html")
    assert copy.read_text(encoding="utf-8") == report.html


def test_repr_html_is_isolated_iframe(full):
    _, report = full
    shown = report._repr_html_()
    assert shown.startswith("<iframe srcdoc=")
    assert "<style>" not in shown  # the report's CSS stays inside the iframe
    assert "Transfer helped" in shown


# --- errors leave an existing report untouched -----------------------------------------------------

def _break(kind: str, run: Path) -> None:
    if kind == "not a run dir":
        (run / "run.json").unlink()
    elif kind == "schema 2":
        edit_json(run / "run.json", schema=2)
    elif kind == "corrupt run.json":
        (run / "run.json").write_text('{"schema": 1,', encoding="utf-8")
    elif kind == "corrupt shift.json":
        (run / "analysis" / "shift.json").write_text("{nope", encoding="utf-8")
    elif kind == "labels out of range":
        write_npz(run / "arms" / "transfer" / "seed-0" / "predictions.npz", labels=np.array([0, 99]),
                  predictions=np.array([0, 1]), probabilities=np.zeros((2, 5), np.float32))


@pytest.mark.parametrize("kind", ["not a run dir", "schema 2", "corrupt run.json", "corrupt shift.json",
                                  "labels out of range"])
def test_errors_raise_and_keep_existing_report(tmp_path, kind):
    run = write_full_run(tmp_path / "run")
    before = b"<html>an older report</html>"
    (run / "report.html").write_bytes(before)
    _break(kind, run)
    with pytest.raises(RunDirError):
        render_report(run)
    assert (run / "report.html").read_bytes() == before
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []  # no temporary left behind


def test_missing_folder_raises(tmp_path):
    with pytest.raises(RunDirError, match="not a directory"):
        render_report(tmp_path / "nope")


# --- recommendations -------------------------------------------------------------------------------

def verdict(kind: str, gap: float, ci: tuple[float, float]) -> dict:
    return {"verdict": kind, "gap": gap, "ci95": list(ci), "seeds": [0, 1, 2]}


def titles(facts: Facts) -> list[str]:
    return [r.title for r in recommend(facts)]


def test_rules_fire_on_their_evidence():
    big_shift = {"proxy_a_distance": {"value": 1.6}, "mmd": {"p_value": 0.2}}
    small_shift = {"proxy_a_distance": {"value": 0.3}, "mmd": {"p_value": 0.4}}
    negative = verdict("negative", -0.05, (-0.08, -0.02))
    recs = recommend(Facts(arms=["transfer", "scratch"], verdict=negative, strategy="linear-probe", shift=big_shift))
    assert recs[0].title == "Large domain shift and negative transfer" and recs[0].command.startswith("--strategy partial")
    assert any("proxy A-distance 1.6" in e for e in recs[0].evidence)
    assert titles(Facts(arms=["transfer", "scratch"], verdict=negative, shift=small_shift)) == [
        "Transfer hurt although the domains look alike"]
    wide = verdict("inconclusive", 0.01, (-0.05, 0.07))
    assert titles(Facts(arms=["transfer", "scratch"], verdict=wide, n_test=100)) == ["Too uncertain to call: add seeds or test data"]
    narrow = verdict("inconclusive", 0.001, (-0.01, 0.012))
    assert titles(Facts(arms=["transfer", "scratch"], verdict=narrow)) == ["No practical difference: choose on cost"]
    moved = {"layers": [{"weight_change": 0.3}, {"weight_change": 0.4}]}
    still = {"layers": [{"weight_change": 0.01}, {"weight_change": 0.02}]}
    positive = verdict("positive", 0.1, (0.05, 0.15))
    assert titles(Facts(arms=["transfer", "scratch"], verdict=positive, strategy="partial", similarity=moved)) == []
    assert titles(Facts(arms=["transfer", "scratch"], verdict=positive, strategy="partial", similarity=still)) == [
        "Fine-tuning more layers may help further"]
    assert titles(Facts(arms=["transfer"])) == ["Train the scratch baseline"]


def test_flagged_methods_come_first_and_shots_rule():
    sanity = {"gradcam": {"flagged": False}, "shap": {"flagged": True, "similarity_after_randomisation": 0.9}}
    shots = {"points": [{"shots": "all", "n_train": 500, "gap": 0.01}, {"shots": 5, "n_train": 50, "gap": 0.2}]}
    recs = recommend(Facts(arms=["transfer", "scratch"], verdict=verdict("positive", 0.1, (0.05, 0.15)),
                           strategy="full", sanity=sanity, shots=shots))
    assert [r.kind for r in recs] == ["warning", "info"]
    assert recs[0].title == "Do not trust the SHAP maps"
    assert "gap +20.0 points at 5 shots (n = 50)" in recs[1].evidence


# --- comparison -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def three_runs(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("compare")
    runs = []
    for i, (t, s, logme) in enumerate([(0.90, 0.70, 2.0), (0.80, 0.72, 1.1), (0.70, 0.75, 0.3)]):
        runs.append(write_full_run(root / f"run-{i}", transfer_acc=t, scratch_acc=s, seed=i, n_explained=1,
                                   scores={"logme": logme, "leep": -1.0 + i, "nce": None, "h_score": 3.0 - i}))
    return runs


def test_compare_three_runs(tmp_path, three_runs):
    out = tmp_path / "cmp" / "compare.html"
    report = render_compare(three_runs, out)
    assert out.read_text(encoding="utf-8") == report.html
    with open(out.with_suffix(".csv"), newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["name"] for r in rows] == ["run-0", "run-1", "run-2"]
    assert {"transfer_mean", "gap_ci_low", "mmd_p", "proxy_a_distance", "logme", "leep", "nce", "h_score"} <= set(rows[0])
    exported = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    taus = {t["score"]: t for t in exported["kendall"]}
    assert exported["measure"] == "gap"
    assert taus["logme"]["tau"] == pytest.approx(1.0)  # LogME ranks the runs exactly as their gaps
    assert taus["h_score"]["tau"] == pytest.approx(1.0)
    assert taus["nce"]["tau"] is None and "needs" in taus["nce"]["note"]
    pairs = exported["pairwise"]
    assert len(pairs) == 3 and all(p["p_holm"] >= p["p_value"] for p in pairs)
    assert "Kendall" in report.html and "Holm" in report.html


def test_pairwise_welch_with_a_run_whose_seeds_all_scored_the_same():
    same, varied = [0.8208955223880597] * 3, [0.70, 0.75, 0.80]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a user would see scipy's precision-loss warning
        pair = welch(same, varied, names=("a", "b"), unpaired_because="different split seed (0 vs 1)")
    # one variance 0: Welch's t is the difference over the other run's standard error, with n_b - 1 degrees of freedom
    t = (same[0] - np.mean(varied)) / (np.std(varied, ddof=1) / np.sqrt(3))
    assert pair.p_value == pytest.approx(2 * stats.t.sf(abs(t), df=2), rel=1e-6) and pair.test == "welch"


def test_compare_table_intervals(three_runs):
    row = compare_table(three_runs)[0]
    accs = [read_json(RunDir(three_runs[0]).seed_dir("transfer", s) / "metrics.json")["test"]["accuracy"] for s in range(3)]
    assert row["transfer_mean"] == pytest.approx(np.mean(accs))
    assert row["seeds"] == 3 and row["verdict"] == "positive" and row["model"] == "resnet18"


def test_compare_two_runs_needs_three(tmp_path, three_runs):
    report = render_compare(three_runs[:2], tmp_path / "two.html")
    assert "Needs ≥ 3 runs" in report.html
    exported = json.loads((tmp_path / "two.json").read_text(encoding="utf-8"))
    assert all(t["tau"] is None for t in exported["kendall"])


def test_compare_with_minimal_run_lists_missing(tmp_path, three_runs):
    minimal = write_minimal_run(tmp_path / "minimal")
    report = render_compare([three_runs[0], minimal], tmp_path / "mixed.html")
    assert any(m.startswith("minimal: transfer-vs-scratch verdict") for m in report.missing)
    assert "minimal: domain shift (the run names no source data: give --source-data to 'xferdiag finetune' or 'audit')" \
        in report.missing  # analyze could not measure it, so the line does not send the reader there


def test_compare_says_a_verdict_is_not_evidence_when_the_baseline_did_not_learn(tmp_path, three_runs):
    dead = write_full_run(tmp_path / "dead", scratch_acc=0.2)  # chance for 5 classes: the verdict's health check flags it
    report = render_compare([three_runs[0], dead], tmp_path / "cmp.html")
    rows = {r["name"]: r for r in json.loads((tmp_path / "cmp.json").read_text(encoding="utf-8"))["runs"]}
    assert rows["dead"]["not_evidence"] == "the scratch baseline did not learn"
    assert rows["run-0"]["not_evidence"] is None
    assert re.search(r'<span class="badge warn">positive</span>\s*<br><span class="why">not evidence: the scratch '
                     r"baseline did not learn</span>", report.html)


def test_compare_rejects_bad_input(tmp_path, three_runs):
    with pytest.raises(InputError):
        render_compare([], tmp_path / "x.html")
    with pytest.raises(InputError):
        render_compare(three_runs, tmp_path / "x.csv")
    with pytest.raises(RunDirError):
        render_compare([tmp_path], tmp_path / "x.html")


def test_holm_and_t_interval_known_values():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    values = [0.8, 0.85, 0.83, 0.9]
    mean, lo, hi = t_interval(values)
    expected = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert (lo, hi) == pytest.approx(expected) and mean == pytest.approx(np.mean(values))
    assert t_interval([0.7]) == (0.7, None, None)
