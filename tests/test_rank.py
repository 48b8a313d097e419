"""``xferdiag rank``: a source model trained on related data ranks above an untrained one."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from xferdiag.commands.rank import INIT, SCORES, order, parse_candidate, rank_models, table_lines
from xferdiag.commands.textdemo import make_tiny_bert, text_scenario_config
from xferdiag.errors import ConfigError


def test_related_source_ranks_above_random_initialisation(tmp_path, digits_checkpoint):
    pretrained = f"builtin:digits-cnn={digits_checkpoint}"
    rows = rank_models("digits:rotated", ["builtin:digits-cnn", pretrained], tmp_path, shots=20, include_random=True)
    assert [r["candidate"] for r in rows] == [pretrained, "builtin:digits-cnn"]
    assert rows[0]["logme"] > rows[1]["logme"]
    assert rows[0]["leep"] is not None and rows[1]["leep"] is None  # no source head, no LEEP
    saved = json.loads((tmp_path / "ranking.json").read_text())
    assert saved["n"] == 200 and [c["rank"] for c in saved["candidates"]] == [1, 2] and saved["random_ranked"]
    with open(tmp_path / "ranking.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert table[0]["candidate"] == pretrained and float(table[0]["logme"]) == pytest.approx(rows[0]["logme"])
    assert [row["init"] for row in table] == ["pretrained", "random reference"]  # ranked on request, still marked
    again = rank_models("digits:rotated", ["builtin:digits-cnn"], tmp_path / "again", shots=20)
    assert again[0]["logme"] == rows[1]["logme"] and again[0]["rank"] is None  # a random reference's weights are seeded


def test_random_candidates_are_references_after_the_ranking_unless_asked():
    rows = [{"candidate": c, "pretrained": p, "init": INIT[p], "logme": v, "seconds": 0.0, **dict.fromkeys(SCORES[1:])}
            for c, p, v in [("a", True, -0.3), ("r1", False, 0.5), ("b", True, -0.1), ("r2", False, -0.2)]]
    ranked = order([dict(r) for r in rows])
    assert [(r["candidate"], r["rank"]) for r in ranked] == [("b", 1), ("a", 2), ("r1", None), ("r2", None)]
    lines = table_lines(ranked)
    heading = next(i for i, line in enumerate(lines) if line.startswith("random-initialisation references"))
    assert heading == 3 and all("random reference" in line for line in lines[4:]) and "pretrained" in lines[1]
    assert [(r["candidate"], r["rank"]) for r in order([dict(r) for r in rows], include_random=True)] == [
        ("r1", 1), ("b", 2), ("r2", 3), ("a", 4)]
    only_random = table_lines(order([dict(r) for r in rows if not r["pretrained"]]))
    assert only_random[-1].startswith("no candidate has pretrained weights")


def test_rank_cli_prints_the_table(tmp_path, digits_checkpoint):
    result = subprocess.run(
        [sys.executable, "-m", "xferdiag", "rank", "--data", "digits:rotated", "--shots", "10", "--out", str(tmp_path),
         "--candidates", f"builtin:digits-cnn={digits_checkpoint}", "builtin:digits-cnn"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "ranking.json" in result.stdout and "n/a" in result.stdout
    reference = next(line for line in result.stdout.splitlines() if line.split()[1:2] == ["builtin:digits-cnn"])
    assert reference.split()[0] == "-" and "random reference" in reference  # marked on screen, not ranked


def test_candidate_syntax():
    assert parse_candidate("resnet18:IMAGENET1K_V1") == ("resnet18:IMAGENET1K_V1", None)
    assert parse_candidate("resnet18=w.pt") == ("resnet18", "w.pt")
    with pytest.raises(ConfigError):
        parse_candidate("resnet18=")
    # a text model's '=' belongs to its options: its weights come from its directory
    assert parse_candidate("hf:bert:pool=cls,encoder=lstm") == ("hf:bert:pool=cls,encoder=lstm", None)
    assert parse_candidate("builtin:minilm:encoder=gru") == ("builtin:minilm:encoder=gru", None)


def test_text_encoder_pretrained_on_the_cues_ranks_above_the_same_one_untrained(tmp_path):
    pytest.importorskip("transformers")
    config = text_scenario_config("text-cues", tmp_path / "cues")  # its tiny BERT is pretrained on the source cues
    untrained = make_tiny_bert(tmp_path / "untrained")
    candidates = [f"hf:{untrained}", config.model, f"{config.model}:pool=cls"]
    rows = rank_models(config.data, candidates, tmp_path / "ranking", shots=4)
    assert rows[-1]["candidate"] == candidates[0]
    assert rows[0]["logme"] > rows[-1]["logme"]
    for row in rows:  # the classifier of a text model is a new head: no source outputs, no LEEP or NCE
        assert row["leep"] is None and row["nce"] is None and "leep" in row["not_applicable"]
