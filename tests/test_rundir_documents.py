"""The typed readers of the JSON files the report reads: wrong types in older or hand-written files are
dropped once, where the file is read, so the report never checks a shape again and still renders."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from report_fixtures import write_full_run

import xferdiag
from xferdiag.report import render_report
from xferdiag.rundir import RunDir, RunDocuments, conform, read_document, read_json, validate, write_json
from xferdiag.rundir.documents import ExplanationIndex, Shift, Shots, Transferability, Verdict

REPORT = Path(xferdiag.__file__).parent / "report"


def test_conform_drops_wrong_values_and_fills_required_containers():
    verdict = conform({"verdict": "positive", "gap": 0.1, "ci95": [0.0, "x"], "p_value": True, "looks": "no",
                       "warnings": [3, {"code": "a", "evidence": 5}], "budgets": {"t": None, "s": {"epochs": "4", "lr": 1}},
                       "plan": 5, "future": [1]}, Verdict)
    assert verdict == {"verdict": "positive", "gap": 0.1, "ci95": [0.0, None], "looks": [], "baselines": {},
                       "warnings": [{"code": "a", "evidence": {}}], "budgets": {"t": None, "s": {"lr": 1}}, "future": [1]}
    assert conform({"points": [{"n_train": 3, "gap": "x", "shots": "all"}, 7]}, Shots) == {"points": [{"n_train": 3, "shots": "all"}]}
    assert conform({"scores": {"logme": 1.5, "leep": None, "nce": "n/a"}}, Transferability) == {
        "scores": {"logme": 1.5, "leep": None, "nce": None}, "not_applicable": {}, "notes": {}, "seconds": {}}


def test_an_absent_file_reads_as_none_and_a_present_one_keeps_what_fits(tmp_path):
    run = RunDir(write_full_run(tmp_path / "run", shots=False))
    assert read_document(run.shots_json, Shots) is None
    written = read_json(run.index_json)
    index = read_document(run.index_json, ExplanationIndex)
    assert index["examples"] == written["examples"] and index["sanity"] == written["sanity"]
    assert index["ig_completeness_gap"] == {} and "budget" not in index  # an image index has neither


def test_a_run_with_wrongly_typed_files_still_renders(tmp_path):
    run = RunDir(write_full_run(tmp_path / "run"))
    shift = read_json(run.shift_json)
    write_json(run.shift_json, {**shift, "layers": ["layer0", *shift["layers"], {"name": "x", "mmd2": "big", "shifted": "yes"}],
                                "mmd": "0.2", "interpretation": ["Shifted.", 3], "per_feature": {"a": 1}})
    verdict = read_json(run.verdict_json)
    write_json(run.verdict_json, {**verdict, "warnings": ["none"], "budgets": [], "looks": [1, 2], "macro_f1": 0.3,
                                  "plan": "later", "baselines": {"tfidf-logreg": 0.7}})
    index = read_json(run.index_json)
    write_json(run.index_json, {**index, "sanity": {**index["sanity"], "ig": "skipped"}, "budget": 12,
                                "agreement": {m: {"spearman": [0.5, "?", 1.0]} for m in index["methods"]}})
    files = RunDocuments.read(run)
    assert [row["name"] for row in files.shift["layers"]] == ["layer1", "layer4", "penultimate", "x"]
    assert files.shift["layers"][-1] == {"name": "x"} and files.shift["mmd"] == {}
    assert files.verdict["warnings"] == [] and files.verdict["budgets"] == {} and "plan" not in files.verdict
    report = render_report(run.root)
    layers = report.html.split('id="layer-shift"')[1].split("</table>")[0]
    assert re.search(r"<td>layer4</td><td class=\"num\">0\.08</td>", layers) and "<td>x</td>" in layers
    assert "Shifted." in report.html and "MMD (kernel two-sample test)" not in report.html
    agreement = report.html.split("<h3>Agreement, transfer vs scratch")[1].split("</table>")[0]
    assert '<td>Grad-CAM</td><td class="num">0.75</td>' in agreement  # mean of 0.5 and 1.0: "?" left out, not read as 0


def test_validate_returns_run_json_typed(tmp_path):
    run = RunDir(write_full_run(tmp_path / "run"))
    write_json(run.run_json, {**read_json(run.run_json), "environment": "a laptop", "command": "xferdiag demo"})
    typed = validate(run.root)
    assert typed["environment"] == {} and "command" not in typed and typed["config"]["strategy"] == "linear-probe"
    assert "<h2" in render_report(run.root).html


def test_report_reads_json_only_through_the_typed_readers():
    """No module of report/ reads a JSON file itself, so every shape check lives in rundir/documents.py."""
    raw = {"read_json", "optional_object"}
    offenders = []
    for path in REPORT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and raw & {alias.name for alias in node.names}:
                offenders.append(f"{path.relative_to(REPORT)}:{node.lineno}")
    assert offenders == []


def test_shift_defaults_are_empty_containers():
    empty = conform({}, Shift)
    assert empty["layers"] == [] and empty["per_feature"] == [] and empty["label_shift"] == {} and "layer" not in empty
