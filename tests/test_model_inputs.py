"""What a model takes and which of its layers run: known answers, in-process and fast.

The input spec comes from the model and its weights' metadata (torchvision transforms, timm's
pretrained_cfg) with the user's overrides on top; blocks come from a traced forward pass, which
must leave no hooks behind and every train/eval flag as it was.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch
from torch import nn

from tests import zoo_models
from xferdiag.engine.strategies import Phase, set_train_mode
from xferdiag.errors import ModelError
from xferdiag.models import InputRequest, ModelSource, build_transfer_model, check_layers, resolve_input_spec
from xferdiag.models.layers import blocks_of, trace
from xferdiag.models.surgery import split_classifier

IMAGENET_MEAN = (0.485, 0.456, 0.406)


class GrayStack(nn.Module):
    """1-channel input, blocks in an nn.ModuleList, BatchNorm in every block."""

    def __init__(self, num_classes: int = 3):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.blocks = nn.ModuleList(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
                                    for _ in range(3))
        self.fc = nn.Linear(4, num_classes)

    def forward(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.fc(x.mean(dim=(2, 3)))


def gray_stack(num_classes: int = 3) -> nn.Module:
    return GrayStack(num_classes)


GRAY = ModelSource.parse("tests.test_model_inputs:gray_stack")


def test_torchvision_weights_say_their_own_size_and_normalisation():
    spec = resolve_input_spec(ModelSource.parse("efficientnet_b1"), None)
    assert (spec.channels, spec.size, spec.mean) == (3, 240, IMAGENET_MEAN)  # IMAGENET1K_V2 crops 240 px
    assert spec.origin == "torchvision EfficientNet_B1_Weights.IMAGENET1K_V2"


@pytest.mark.skipif(importlib.util.find_spec("timm") is None, reason="timm is not installed")
def test_timm_pretrained_cfg_gives_the_normalisation():
    spec = resolve_input_spec(ModelSource.parse("timm:vit_tiny_patch16_224"), None)
    assert (spec.size, spec.mean, spec.std) == (224, (0.5,) * 3, (0.5,) * 3)


def test_a_users_model_says_its_channels_and_the_user_the_rest():
    assert resolve_input_spec(GRAY, None) == resolve_input_spec(GRAY, None, InputRequest())
    spec = resolve_input_spec(GRAY, None)
    assert (spec.channels, spec.size, spec.mean, spec.std) == (1, 224, (0.5,), (0.5,))
    spec = resolve_input_spec(GRAY, None, InputRequest(image_size=16, normalize="none"))
    assert (spec.size, spec.mean, spec.std) == (16, (0.0,), (1.0,))
    spec = resolve_input_spec(ModelSource.parse("resnet18"), None, InputRequest(mean=(0.5,), std=(0.25,)))
    assert (spec.mean, spec.std) == ((0.5,) * 3, (0.25,) * 3)  # one value is broadcast over the channels


@pytest.mark.parametrize("request_, message", [
    (InputRequest(channels=3), "first convolution takes 1 channel"),
    (InputRequest(mean=(0.1, 0.2)), r"2 values for a model that takes 1 channel\(s\)"),
])
def test_requests_the_model_cannot_meet_are_refused(request_, message):
    with pytest.raises(ModelError, match=message):
        resolve_input_spec(GRAY, None, request_)


def test_a_model_that_does_not_run_on_the_input_is_refused_before_training():
    with pytest.raises(ModelError, match=r"does not take a \(3, 16, 16\) input"):
        build_transfer_model(GRAY, 2, pretrained=None,
                             input_spec=resolve_input_spec(ModelSource.parse("resnet18"), None, InputRequest(image_size=16)))


def test_blocks_are_traced_in_running_order_with_module_lists_opened_up():
    assert build_transfer_model(ModelSource.parse("resnet18"), 2, pretrained=None).blocks == \
        ["conv1", "bn1", "layer1", "layer2", "layer3", "layer4"]
    model = build_transfer_model(GRAY, 2, pretrained=None, input_spec=resolve_input_spec(GRAY, None, InputRequest(image_size=8)))
    assert model.blocks == ["stem", "blocks.0", "blocks.1", "blocks.2"]
    vit_source = ModelSource.parse("tests.zoo_models:vit")
    vit = build_transfer_model(vit_source, 2, pretrained=None,
                               input_spec=resolve_input_spec(vit_source, None, InputRequest(image_size=zoo_models.SIZE)))
    assert vit.blocks == ["conv_proj", "encoder.layers.encoder_layer_0", "encoder.layers.encoder_layer_1", "encoder.ln"]
    check_layers(["encoder.layers.encoder_layer_1.mlp"], vit.layer_trace, vit.blocks)
    with pytest.raises(ModelError, match="'encoder.layers.encoder_layer_9' is not a module that runs.*conv_proj, encoder"):
        check_layers(["encoder.layers.encoder_layer_9"], vit.layer_trace, vit.blocks)


def test_trace_leaves_no_hooks_and_every_flag_as_it_was():
    model = GrayStack()
    model.train()
    model.blocks[1].eval()
    flags = {name: m.training for name, m in model.named_modules()}
    seen, output = trace(model, torch.zeros(2, 1, 8, 8))
    assert output.shape == (2, 3) and seen.order[-1] == "fc" and "blocks" not in seen.shapes  # a ModuleList never runs
    assert {name: m.training for name, m in model.named_modules()} == flags
    assert all(not m._forward_hooks for m in model.modules())
    backbone, width = split_classifier(model)
    assert blocks_of(backbone, trace(backbone, torch.zeros(1, 1, 8, 8))[0]) == ["stem", "blocks.0", "blocks.1", "blocks.2"]


def test_partial_fine_tuning_of_nested_blocks_keeps_frozen_batchnorm_in_eval_mode():
    model = build_transfer_model(GRAY, 2, pretrained=None, input_spec=resolve_input_spec(GRAY, None, InputRequest(image_size=8)))
    set_train_mode(model, Phase("partial", 1, trainable_blocks=1))
    assert model.backbone.blocks[2][1].training and model.head.training
    assert not model.backbone.blocks[0][1].training and not model.backbone.blocks[1][1].training
    assert not model.backbone.stem.training


def test_squeezenet_classifies_with_a_convolution_that_surgery_takes_off():
    backbone, width = split_classifier(ModelSource.parse("squeezenet1_0").build_classifier())
    assert width == 512
    features = backbone.eval()(torch.zeros(2, 3, 64, 64))
    assert features.shape == (2, 512)
    assert not any(isinstance(m, nn.ReLU) for m in backbone.classifier)  # nothing clips the features after pooling


def test_googlenet_loses_its_auxiliary_heads_and_returns_one_tensor_in_training():
    model = ModelSource.parse("googlenet").build_classifier(num_classes=4)
    assert model.aux1 is None and model.aux2 is None and not model.aux_logits
    assert model.train()(torch.zeros(2, 3, 64, 64)).shape == (2, 4)


def test_the_zoo_helpers_run_at_their_size():
    for build in (zoo_models.vit, zoo_models.maxvit, zoo_models.swin):
        assert build(3).eval()(torch.zeros(1, 3, zoo_models.SIZE, zoo_models.SIZE)).shape == (1, 3)


def test_a_users_model_without_convolutions_takes_a_tables_rows(tmp_path, monkeypatch):
    """A module:function MLP on a CSV table: the table gives the input (it was taken for an image model before)."""
    import numpy as np

    from xferdiag.data import Domain
    from xferdiag.modalities.table.load import TableRows
    from xferdiag.models.inputs import resolve_input

    (tmp_path / "mlpnets.py").write_text("from torch import nn\n\ndef mlp(num_classes=2):\n"
                                         "    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, num_classes))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    source = ModelSource.parse("mlpnets:mlp")
    table = Domain("t.csv", ["a", "b"], np.array([0, 1, 0]), TableRows(np.zeros((3, 5), np.float32), list("vwxyz")))
    spec, choice = resolve_input(source, None, plain=table.plain_input())
    assert (spec.kind, spec.size, spec.channels, choice) == ("table", 5, 0, None)
    model = build_transfer_model(source, 3, pretrained=source.build_classifier(), input_spec=spec)
    assert model(torch.zeros(4, 5)).shape == (4, 3)
    # a model with a convolution keeps its own input even on a table's data (the fit check then says why not)
    assert resolve_input(ModelSource.parse("resnet18"), None, InputRequest(image_size=16), plain=table.plain_input())[0].kind == "image"
