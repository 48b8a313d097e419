"""Tables: CSV and .npz loading, the tabular MLP, per-feature shift, SHAP/LIME with feature names,
source-to-target transfer with every strategy, and the tabular demo end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from xferdiag.analyzers.shift import feature_shift
from xferdiag.cli import main
from xferdiag.config import STRATEGIES, RunConfig
from xferdiag.data import split_target
from xferdiag.errors import DataError, InputError, ModelError
from xferdiag.explainers import TableRequest, explain_arms
from xferdiag.modalities.loading import load_domain
from xferdiag.modalities.resolve import resolve_config
from xferdiag.modalities.table.mlp import model_for_data
from xferdiag.models import ModelSource, build_transfer_model, resolve_input_spec

NAMES = ["age", "dose", "weight", "noise"]


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def make_table(n: int, shift: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Four features; the class depends on age and dose; ``shift`` moves only 'dose' (column 1)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)) * [10, 1, 5, 1] + [50, 0, 70, 0]
    x[:, 1] += shift
    y = ((x[:, 0] - 50) / 10 + x[:, 1] - shift > 0).astype(np.int64)
    return x.astype(np.float32), y


def write_csv(path, x, y, label="label", labels=None, extra=None):
    header = [*NAMES, label] + (list(extra) if extra else [])
    lines = [",".join(header)]
    for i, row in enumerate(x):
        cells = [f"{v:.4f}" for v in row] + [str(labels[y[i]] if labels else y[i])] + ([extra[k][i] for k in extra] if extra else [])
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def tables(tmp_path):
    xs, ys = make_table(160, 0.0, 0)
    xt, yt = make_table(120, 2.0, 1)
    return write_csv(tmp_path / "source.csv", xs, ys), write_csv(tmp_path / "target.csv", xt, yt)


# --- loading ------------------------------------------------------------------------------------

def test_csv_table_loads_features_labels_and_split(tmp_path):
    x, y = make_table(12, 0.0, 0)
    split = {"split": ["train"] * 6 + ["val"] * 2 + ["test"] * 4}
    path = write_csv(tmp_path / "t.csv", x, y, label="outcome", labels=["no", "yes"], extra=split)
    domain = load_domain(f"{path}:outcome")
    assert domain.kind == "table" and domain.payload.feature_names == NAMES and domain.classes == ["no", "yes"]
    np.testing.assert_allclose(domain.payload.rows, x, atol=1e-4)
    np.testing.assert_array_equal(domain.labels, y)
    splits = split_target(domain, 0.15, 0.25, 0, "all")
    assert splits.sizes() == {"train": 6, "val": 2, "test": 4}
    row, label = splits.dataset("test", resolve_input_spec(ModelSource.parse("builtin:tabular-mlp:features=4"), None))[0]
    assert row.dtype == torch.float32 and row.shape == (4,) and int(label) == y[8]


@pytest.mark.parametrize("content, spec_suffix, message", [
    ("a,b,label\n1,2,0\n3,4,1\n", ":target", r"no label column 'target' \(columns: a, b, label\); name it with --label-column"),
    ("a,color,label\n1,red,0\n3,blue,1\n", "", r"column 'color' is not numeric \(row 2: 'red'\); encode it as numbers or drop the column"),
    ("a,b,label\n1,,0\n3,4,1\n", "", r"column 'b' has a missing or infinite value in row 2"),
    ("a,b,label\n1,2,0\n3,4\n", "", r"row 3 has 2 cells but the header has 3"),
    ("a,b,label\n1,2,0\n3,4,0\n", "", r"found 1 class\(es\); classification needs at least 2"),
    ("label\n0\n1\n", "", r"no feature columns besides 'label'"),
])
def test_csv_errors_say_what_is_wrong(tmp_path, content, spec_suffix, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        load_domain(f"{path}{spec_suffix}")


def test_npz_table_with_split_and_feature_names(tmp_path):
    x, y = make_table(20, 0.0, 3)
    split = np.array([0] * 12 + [1] * 3 + [2] * 5)
    np.savez(tmp_path / "t.npz", x=x, y=y, split=split, feature_names=np.array(NAMES))
    domain = load_domain(str(tmp_path / "t.npz"))
    assert domain.kind == "table" and domain.payload.feature_names == NAMES and domain.payload.rows.shape == (20, 4)
    assert split_target(domain, 0.15, 0.25, 0, "all").sizes() == {"train": 12, "val": 3, "test": 5}
    np.savez(tmp_path / "names.npz", x=x, y=y, feature_names=np.array(NAMES[:3]))
    with pytest.raises(DataError, match=r"'feature_names' has 3 names for 4 columns of 'x'"):
        load_domain(str(tmp_path / "names.npz"))
    x[3, 2] = np.nan
    np.savez(tmp_path / "nan.npz", x=x, y=y)
    with pytest.raises(DataError, match=r"'x' contains NaN or infinite values"):
        load_domain(str(tmp_path / "nan.npz"))


def test_tabular_mlp_spec_width_and_errors(tables):
    assert model_for_data("builtin:tabular-mlp", str(tables[1])) == "builtin:tabular-mlp:features=4"
    assert model_for_data("builtin:tabular-mlp:hidden=8", str(tables[1])) == "builtin:tabular-mlp:features=4,hidden=8"
    assert model_for_data("resnet18", "digits:plain") == "resnet18"
    model = build_transfer_model(ModelSource.parse("builtin:tabular-mlp:features=4,hidden=16-8-8"), 2, pretrained=None)
    assert model.blocks == ["block1", "block2", "block3"] and model.feature_dim == 8
    model.train()
    assert model(torch.randn(1, 4)).shape == (1, 2)  # a training batch of one row does not break BatchNorm
    with pytest.raises(ModelError, match=r"bad option 'hidden=0'"):
        ModelSource.parse("builtin:tabular-mlp:features=4,hidden=0").build_classifier()
    with pytest.raises(ModelError, match=r"the number of input features is unknown"):
        ModelSource.parse("builtin:tabular-mlp").build_classifier()
    with pytest.raises(ModelError, match=r"needs a table .* digits:plain holds images"):
        model_for_data("builtin:tabular-mlp", "digits:plain")
    config = resolve_config(RunConfig(data=f"{tables[1]}", source_data=str(tables[0]), model="builtin:tabular-mlp"), "label")
    assert config.data == f"{tables[1]}:label" and config.source_data == f"{tables[0]}:label"
    assert config.model == "builtin:tabular-mlp:features=4"


# --- shift and explanations --------------------------------------------------------------------------

def test_per_feature_shift_finds_the_shifted_feature():
    xs, _ = make_table(300, 0.0, 0)
    xt, _ = make_table(300, 0.8, 1)
    result = feature_shift(xs, xt, NAMES)
    rows = {r["name"]: r for r in result.to_dict()["per_feature"]}
    assert [name for name, r in rows.items() if r["shifted"]] == ["dose"]
    assert rows["dose"]["smd"] == pytest.approx(0.8, abs=0.15) and rows["dose"]["ks_statistic"] > 0.25
    assert all(abs(rows[n]["smd"]) < 0.2 and rows[n]["p_adjusted"] > 0.05 for n in ("age", "weight", "noise"))
    assert rows["dose"]["p_adjusted"] == pytest.approx(4 * rows["dose"]["p_value"])  # BH: smallest of 4 p-values
    with pytest.raises(InputError, match=r"feature_names: has 2 names for 4 features"):
        feature_shift(xs, xt, NAMES[:2])


def test_tabular_shap_and_lime_name_the_features_the_model_uses():
    """A linear 'model' that only reads age and dose: both explainers rank them first, SHAP adds up."""
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 2)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.2, 2.0, 0.0, 0.0]]))
        net.bias.copy_(torch.tensor([0.0, -10.0]))
    x, y = make_table(40, 0.0, 5)
    rows, training = x[:4], x[4:]
    index, maps = explain_arms(TableRequest(models={"transfer": net.eval(), "scratch": net.eval()}, rows=rows, labels=y[:4],
                                            training=training, feature_names=NAMES, methods=("gradcam", "shap", "lime"),
                                            lime_samples=300, shap_samples=100, example_ids=[3, 5, 8, 9]), progress=False)
    assert index["kind"] == "table" and index["methods"] == ["shap", "lime"] and index["feature_names"] == NAMES
    assert index["params"]["skipped"] == {"gradcam": "needs images"}
    assert [e["index"] for e in index["examples"]] == [3, 5, 8, 9]
    assert maps["rows"].shape == (4, 4) and maps["shap__transfer"].shape == (4, 4)
    for method in ("shap", "lime"):
        top = [entry["name"] for entry in index["importance"][method]["transfer"][:2]]
        assert set(top) == {"age", "dose"}, (method, top)
        assert index["agreement"][method]["spearman"] == pytest.approx([1.0] * 4)
    probs = torch.softmax(net(torch.from_numpy(rows)), 1).detach().numpy()[np.arange(4), y[:4]]
    np.testing.assert_allclose(maps["shap__transfer"].sum(1) + index["base_values"]["shap"]["transfer"], probs, atol=1e-4)
    assert np.abs(maps["shap__transfer"][:, 2:]).max() < 1e-6  # unused features get nothing


def test_report_tables_escape_feature_names_from_the_files(tmp_path):
    """Per-feature shift and tabular attributions written as docs/rundir.md describes, with hostile names."""
    from xferdiag.report import render_report
    from xferdiag.rundir import write_json, write_npz

    names = ["<script>alert(1)</script>", "dose", "$x$ & y"]
    write_json(tmp_path / "run.json", {"schema": 1, "config": {}})
    write_json(tmp_path / "data.json", {"classes": ["no", "<b>yes</b>"], "kind": "table", "input": {"channels": 0, "size": 3}})
    write_json(tmp_path / "arms" / "transfer" / "seed-0" / "metrics.json", {"test": {"accuracy": 0.75}})
    write_json(tmp_path / "analysis" / "shift.json", {"per_feature": [
        {"name": n, "ks_statistic": k, "p_value": p, "p_adjusted": p, "smd": d, "shifted": p < 0.05}
        for n, k, p, d in zip(names, (0.1, 0.9, 0.2), (0.5, 1e-9, 0.3), (0.1, 2.0, -0.3))]})
    write_json(tmp_path / "explanations" / "index.json", {
        "kind": "tabular", "methods": ["shap"], "arms": ["transfer"], "seed": 0, "feature_names": names,
        "examples": [{"index": 4, "label": 1, "pred": {"transfer": 1}, "correct": {"transfer": True}}]})
    write_npz(tmp_path / "explanations" / "maps.npz", rows=np.array([[1.0, 2.0, 3.0]], np.float32),
              shap__transfer=np.array([[0.5, -0.2, 0.0]], np.float32))
    report = render_report(tmp_path)
    html = report.html
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;b&gt;yes" in html
    assert 'id="feature-shift"' in html and "1 of 3 input features shift" in html
    assert "SHAP summary" in html and "Feature attributions for test example 4" in html
    assert "table rows of 3 features" in html


# --- transfer with every strategy ------------------------------------------------------------------

@pytest.mark.slow
def test_table_transfer_with_every_strategy_and_scratch(tables, tmp_path, capsys):
    from xferdiag.commands.demo import pretrain_source

    source, target = map(str, tables)
    checkpoint = pretrain_source(source, tmp_path / "pre", epochs=15, quiet=True, model="builtin:tabular-mlp:hidden=16-16")
    torch.set_num_threads(1)
    accuracy = {}
    for strategy in STRATEGIES:
        out = tmp_path / strategy
        args = ["finetune", "--data", target, "--source-data", source, "--model", "builtin:tabular-mlp:hidden=16-16",
                "--pretrained-checkpoint", str(checkpoint), "--strategy", strategy, "--epochs", "4", "--seeds", "1",
                "--shots", "10", "--batch-size", "8", "--threads", "1", "--out", str(out), "--quiet"]
        assert main(args) == 0, capsys.readouterr().err
        accuracy[strategy] = json.loads((out / "arms" / "transfer" / "seed-0" / "metrics.json").read_text())["test"]["accuracy"]
        assert json.loads((out / "run.json").read_text())["config"]["model"] == "builtin:tabular-mlp:features=4,hidden=16-16"
        assert (out / "verdict.json").is_file()
    pre = torch.load(checkpoint, weights_only=True)
    frozen = torch.load(tmp_path / "linear-probe" / "arms" / "transfer" / "seed-0" / "model.pt", weights_only=True)
    for key in ("standardize.running_mean", "standardize.running_var", "block1.linear.weight"):
        assert torch.equal(frozen[f"backbone.{key}"], pre[key])  # a frozen backbone keeps the source standardisation
    full = torch.load(tmp_path / "full" / "arms" / "transfer" / "seed-0" / "model.pt", weights_only=True)
    assert not torch.equal(full["backbone.standardize.running_mean"], pre["standardize.running_mean"])
    assert min(accuracy.values()) > 0.6, accuracy


# --- the demo ------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_tabular_demo_report_shows_feature_shift_and_attributions(tmp_path, capsys):
    from xferdiag.commands.audit import audit
    from xferdiag.rundir import read_npz

    out = tmp_path / "demo"
    assert main(["demo", "--scenario", "tabular", "--out", str(out), "--quiet"]) == 0
    assert "verdict: transfer" in capsys.readouterr().out
    torch.set_num_threads(1)
    shift = json.loads((out / "analysis" / "shift.json").read_text())
    most = max(shift["per_feature"], key=lambda f: f["ks_statistic"])
    assert most["name"] == "mean texture" and most["ks_statistic"] == 1.0 and most["shifted"]  # the split feature
    assert len(shift["per_feature"]) == 30 and any("mean texture (SMD +" in s for s in shift["interpretation"])
    index = json.loads((out / "explanations" / "index.json").read_text())
    assert index["kind"] == "table" and "mean texture" in index["feature_names"] and len(index["examples"]) == 8
    html = (out / "report.html").read_text()
    assert 'id="feature-shift"' in html and "mean texture" in html
    assert "feature attributions" in html and "SHAP summary" in html and html.count("Feature attributions for test example") == 8

    # the demo's fine-tuned table model, audited as if it came from elsewhere, scores the same
    transfer = out / "arms" / "transfer" / "seed-0"
    config = RunConfig.from_dict(json.loads((out / "run.json").read_text())["config"]).replace(threads=1, baseline="none")
    audited = audit(transfer / "model.pt", config, tmp_path / "audited", quiet=True)
    np.testing.assert_array_equal(read_npz(audited / "arms" / "transfer" / "seed-0" / "predictions.npz")["predictions"],
                                  read_npz(transfer / "predictions.npz")["predictions"])
    assert json.loads((audited / "run.json").read_text())["audit"]["checkpoint_form"] == "transfer"
