"""``xferdiag audit`` of a text model fine-tuned with Hugging Face's own classes and saved with
``save_pretrained``: the run's transfer arm must predict exactly what the saved model predicts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from xferdiag.cli import main
from xferdiag.commands.textdemo import text_scenario_config, write_jsonl
from xferdiag.data import split_target
from xferdiag.modalities.loading import load_domain
from xferdiag.modalities.text.cues import cue_corpus
from xferdiag.modalities.text.network import transformers_offline
from xferdiag.rundir import RunDir, read_json

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """The text-cues demo's BERT pretrained on the source cues, given a pooler (as BERT checkpoints have),
    and fine-tuned on the target cues by a plain loop over BertForSequenceClassification whose id2label
    lists the classes in reverse order."""
    tf = transformers_offline()
    root = tmp_path_factory.mktemp("hf-audit")
    base = Path(text_scenario_config("text-cues", root).model.removeprefix("hf:"))
    tf.BertModel.from_pretrained(str(base)).save_pretrained(str(base), safe_serialization=True)
    data = write_jsonl(root / "cues.jsonl", cue_corpus("target", 30, seed=4))
    domain = load_domain(str(data))
    names = list(reversed(domain.classes))
    tokenizer = tf.AutoTokenizer.from_pretrained(str(base))
    torch.manual_seed(0)
    model = tf.BertForSequenceClassification.from_pretrained(
        str(base), num_labels=len(names), id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)})
    texts = [str(t) for t in domain.payload.texts]
    labels = torch.tensor([names.index(domain.classes[y]) for y in domain.labels])
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(40):
        optimiser.zero_grad()
        model(**batch, labels=labels).loss.backward()
        optimiser.step()
    tuned = root / "tuned"
    model.save_pretrained(str(tuned), safe_serialization=True)
    tokenizer.save_pretrained(str(tuned))
    return {"base": base, "tuned": tuned, "data": data, "domain": domain, "names": names, "tokenizer": tokenizer,
            "model": model.eval()}


def audit(case, out, *extra, checkpoint=None, model=None):
    return main(["audit", "--checkpoint", str(checkpoint or case["tuned"]), "--model", model or f"hf:{case['base']}",
                 "--data", str(case["data"]), "--epochs", "2", "--quiet", "--out", str(out), *extra])


def test_audited_arm_predicts_what_the_saved_model_predicts(case, tmp_path, capsys):
    out = tmp_path / "run"
    assert audit(case, out) == 0, capsys.readouterr().err
    run = RunDir(out)
    config = read_json(run.run_json)
    assert config["config"]["model"] == f"hf:{case['base'].resolve()}:head=hf"
    assert config["audit"]["checkpoint_form"] == "hf-directory"
    saved = np.load(run.seed("transfer", 0).predictions_npz)
    split = split_target(case["domain"], config["config"]["val_fraction"], config["config"]["test_fraction"],
                         config["config"]["split_seed"], "all")
    test = split.indices["test"]
    with torch.no_grad():
        batch = case["tokenizer"]([str(case["domain"].payload.texts[i]) for i in test], padding=True, return_tensors="pt")
        probs = case["model"](**batch).logits.softmax(1).numpy()
    order = [case["names"].index(c) for c in case["domain"].classes]  # the saved head's rows in the data's class order
    np.testing.assert_array_equal(saved["labels"], case["domain"].labels[test])
    np.testing.assert_allclose(saved["probabilities"], probs[:, order], atol=1e-5)
    assert (saved["predictions"] == saved["labels"]).mean() > 0.5  # the fine-tuning learnt the cues
    assert RunDir(out).seed("scratch", 0).metrics_json.is_file()  # the scratch arm: the same architecture, random weights


@pytest.mark.parametrize("breakage, needle", [
    ("labels", "are not the data's classes"),
    ("outputs", "has 3 outputs but the target data has 4 classes"),
    ("model", "is audited with --model hf:BASE_DIR"),
])
def test_a_directory_that_does_not_fit_fails_in_one_line(case, tmp_path, capsys, breakage, needle):
    tf = transformers_offline()
    checkpoint, model = case["tuned"], None
    if breakage in ("labels", "outputs"):
        names = ["w", "x", "y", "z"] if breakage == "labels" else case["names"][:3]
        other = tf.BertForSequenceClassification.from_pretrained(str(case["base"]), num_labels=len(names),
                                                                 id2label=dict(enumerate(names)))
        checkpoint = tmp_path / "other"
        other.save_pretrained(str(checkpoint), safe_serialization=True)
        case["tokenizer"].save_pretrained(str(checkpoint))
    else:
        model = "resnet18"
    out = tmp_path / "run"
    assert audit(case, out, "--baseline", "none", checkpoint=checkpoint, model=model) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err, err
    assert not out.exists()


@pytest.mark.slow
def test_the_audited_directory_goes_through_analyze_explain_and_report(case, tmp_path, capsys):
    out = tmp_path / "run"
    assert audit(case, out, "--baseline", "none") == 0, capsys.readouterr().err
    assert main(["report", str(out), "--quiet"]) == 0, capsys.readouterr().err
    html = (out / "report.html").read_text(encoding="utf-8")
    for section in ("verdict", "transferability", "similarity", "explanations"):
        assert f'id="{section}"' in html, section
    assert "encoder.bert.pooler" in html  # the model's own pooler is a layer of its backbone
