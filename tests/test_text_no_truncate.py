"""--no-truncate beyond the target's splits: the source texts of the shift analysis and the texts `rank` scores."""

from __future__ import annotations

import pytest

from xferdiag import rundir
from xferdiag.commands.analyze import analyze_run
from xferdiag.commands.finetune import finetune
from xferdiag.commands.rank import rank_models
from xferdiag.commands.textdemo import make_tiny_bert, write_jsonl
from xferdiag.config import RunConfig
from xferdiag.data import split_target
from xferdiag.errors import DataError
from xferdiag.modalities.loading import load_domain
from xferdiag.modalities.text.cues import cue_corpus

pytestmark = pytest.mark.usefixtures("one_thread")

LONG = " padding" * 6  # 10 words are 12 tokens with [CLS] and [SEP]; these six more make 18, over 16


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return make_tiny_bert(tmp_path_factory.mktemp("tiny") / "bert")


def lengthen(rows: list[dict], every: int, words: str = LONG) -> tuple[list[dict], set[int]]:
    long = set(range(0, len(rows), every))
    for i in long:
        rows[i]["text"] += words
    return rows, long


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    folder = tmp_path_factory.mktemp("texts")
    target, long_target = lengthen(cue_corpus("target", 20, seed=3), 7)
    source, long_source = lengthen(cue_corpus("source", 20, seed=4), 5, " overlong" * 6)
    return (write_jsonl(folder / "target.jsonl", target), long_target,
            write_jsonl(folder / "source.jsonl", source), long_source)


def test_analyze_leaves_long_source_and_target_texts_out_counts_them_and_warns(tiny_bert, corpora, tmp_path, capsys):
    target, long_target, source, long_source = corpora
    config = RunConfig(data=str(target), source_data=str(source), model=f"hf:{tiny_bert}", strategy="linear-probe",
                       max_length=16, truncate=False, epochs=1, seeds=1, threads=1, baseline="none")
    out = finetune(config, tmp_path / "run", quiet=True)
    capsys.readouterr()
    result = analyze_run(out, quiet=True, n_permutations=50)["shift"]
    assert capsys.readouterr().err.strip() == (
        f"xferdiag: warning: {len(long_target)} of 80 target texts and {len(long_source)} of 80 source texts are longer than "
        "--max-length 16 tokens and are left out of the analysis (--no-truncate)")
    assert result["left_out"] == {"target": len(long_target), "source": len(long_source)}
    assert rundir.read_json(rundir.RunDir(out).shift_json)["left_out"] == result["left_out"]
    assert (result["n_source"], result["n_target"]) == (80 - len(long_source), 80 - len(long_target))
    words = [w["word"] for w in result["separating_words"]]
    assert words and "overlong" not in words  # in 16 source texts and no target text: read, it would separate them


def test_analyze_with_no_source_text_short_enough_ends_in_one_line_and_writes_nothing(tiny_bert, corpora, tmp_path):
    target, _, _, _ = corpora
    source = write_jsonl(tmp_path / "long.jsonl", lengthen(cue_corpus("source", 5, seed=4), 1)[0])
    config = RunConfig(data=str(target), source_data=str(source), model=f"hf:{tiny_bert}", strategy="linear-probe",
                       max_length=16, truncate=False, epochs=1, seeds=1, threads=1, baseline="none")
    run = rundir.RunDir(finetune(config, tmp_path / "run", quiet=True))
    with pytest.raises(DataError, match=r"^source data .*long\.jsonl: all 20 texts are longer than --max-length 16 tokens"):
        analyze_run(run.root, quiet=True)
    assert not run.features_npz.exists() and not run.shift_json.exists()


def test_rank_scores_only_the_training_texts_that_fit_and_says_how_many_it_left_out(tiny_bert, corpora, tmp_path, capsys):
    target, long_target, _, _ = corpora
    cut = split_target(load_domain(str(target)), 0.15, 0.25, 0, "all")
    dropped = len(set(cut.indices["train"]) & long_target)
    assert dropped > 0
    whole = rank_models(str(target), [f"hf:{tiny_bert}"], tmp_path / "cut", max_length=16)
    assert rundir.read_json(tmp_path / "cut" / "ranking.json")["n"] == len(cut.indices["train"])
    assert "left_out" not in rundir.read_json(tmp_path / "cut" / "ranking.json")
    capsys.readouterr()
    kept = rank_models(str(target), [f"hf:{tiny_bert}"], tmp_path / "kept", max_length=16, truncate=False)
    assert capsys.readouterr().err.strip() == (
        f"xferdiag: warning: {dropped} of {len(cut.indices['train'])} training texts do not fit in --max-length tokens of every "
        "candidate and are left out of the scores (--no-truncate)")
    ranking = rundir.read_json(tmp_path / "kept" / "ranking.json")
    assert ranking["left_out"] == dropped and ranking["n"] == len(cut.indices["train"]) - dropped
    assert kept[0]["logme"] != whole[0]["logme"]
    with pytest.raises(DataError, match="all 80 texts are longer than --max-length 8 tokens"):
        rank_models(str(target), [f"hf:{tiny_bert}"], tmp_path / "none", max_length=8, truncate=False)
    assert not (tmp_path / "none").exists()
