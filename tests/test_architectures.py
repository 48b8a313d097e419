"""Architecture contract (issue 16), in the spirit of timm's test_models.py: every torchvision
classification family, timm models and the lukemelas-style EfficientNet-Lite0 go through
finetune -> analyze -> explain -> report at tiny sizes, with random weights saved by the test as
the "pretrained" checkpoint.

Each family stresses something different: SqueezeNet classifies with a 1x1 convolution, GoogLeNet
and Inception v3 carry auxiliary heads, MNASNet versions its state_dict, MaxViT and
EfficientNet-Lite keep their blocks in an nn.ModuleList, ViT and Swin output token sequences, VGG
ends in a Sequential of Linear-ReLU-Dropout, timm models have their own head API (timm's MobileNetV3
widens its features after pooling, and its Swin leaves 5-D constants in a traced copy). A representative
subset runs in the quick loop; the whole zoo is marked slow (CI runs it).
"""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

import xferdiag
from tests.conftest import make_image_folder
from xferdiag.models import ModelSource

FAST = ["squeezenet1_0", "googlenet", "mnasnet0_5", "tests.zoo_models:vit", "builtin:efficientnet-lite0"]
SLOW = ["resnet18", "tests.zoo_models:vgg", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0", "efficientnet_v2_s",
        "convnext_tiny", "regnet_y_400mf", "densenet121", "shufflenet_v2_x0_5", "inception_v3", "tests.zoo_models:swin",
        "tests.zoo_models:maxvit", "timm:resnet18", "tests.zoo_models:timm_vit", "tests.zoo_models:timm_swin",
        "timm:mobilenetv3_small_050"]
IMAGE_SIZE = {"inception_v3": 75}  # its stem needs at least 75 px; everything else runs at 32
NEEDS = {"builtin:efficientnet-lite0": "efficientnet_lite_pytorch", "timm:resnet18": "timm", "tests.zoo_models:timm_vit": "timm",
         "tests.zoo_models:timm_swin": "timm", "timm:mobilenetv3_small_050": "timm"}


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("zoo") / "images", per_class=10, size=32, mode="RGB")


def check_contract(spec: str, images, tmp_path) -> None:
    package = NEEDS.get(spec)
    if package and importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} is not installed (pip install 'xferdiag[test]')")
    torch.manual_seed(0)
    checkpoint = tmp_path / "pretrained.pt"
    torch.save(ModelSource.parse(spec).build_classifier().state_dict(), checkpoint)
    run = xferdiag.finetune(data=str(images), model=spec, pretrained_checkpoint=str(checkpoint), out=tmp_path / "run",
                            strategy="partial", partial_blocks=1, epochs=1, seeds=1, batch_size=8, threads=1,
                            image_size=IMAGE_SIZE.get(spec, 32), quiet=True)
    xferdiag.analyze(run, max_samples=16, n_permutations=20, quiet=True)
    xferdiag.explain(run, n=1, lime_samples=10, shap_samples=2, quiet=True)
    report = xferdiag.build_report(run, quiet=True)

    assert json.loads((run / "verdict.json").read_text())["verdict"] in ("positive", "negative", "inconclusive")
    layers = json.loads((run / "analysis" / "similarity.json").read_text())["layers"]
    blocks = [row for row in layers if row["name"] != "penultimate"]
    assert len(blocks) >= 2, layers
    assert all(row["cka_linear"] is not None or row.get("skipped") for row in layers)
    # partial fine-tuning of one block: the earlier blocks did not move, the last one did
    assert all(row["weight_change"] == 0 for row in blocks[:-1]), blocks
    assert blocks[-1]["weight_change"] > 0, blocks[-1]
    index = json.loads((run / "explanations" / "index.json").read_text())
    assert index["methods"] == ["gradcam", "shap", "lime"]
    assert not any(item.startswith(("explanations", "layer-wise", "transferability")) for item in report.missing), report.missing


@pytest.mark.parametrize("spec", FAST)
def test_family_runs_end_to_end(spec, images, tmp_path):
    check_contract(spec, images, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("spec", SLOW)
def test_zoo_runs_end_to_end(spec, images, tmp_path):
    check_contract(spec, images, tmp_path)
