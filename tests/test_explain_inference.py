"""The forward-only copy that LIME and deletion/insertion classify with: same outputs, caller's model untouched."""

import numpy as np
import pytest
import torch
import torchvision
from explain_helpers import patch_data, trained_patch_cnn
from lime.lime_image import LimeImageExplainer
from torch import nn

from xferdiag.errors import InputError
from xferdiag.explainers import lime_images
from xferdiag.explainers.inference import inference_copy, resolve_precision
from xferdiag.explainers.lime import probability_fn, segmenter

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: threads cost more than they save


def resnet_with_learnt_norms() -> nn.Module:
    """A ResNet-18 whose batch norms are far from the identity, so a wrong fold would show."""
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=5)
    for norm in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        norm.running_mean.uniform_(-0.5, 0.5)
        norm.running_var.uniform_(0.5, 2.0)
        norm.weight.data.uniform_(0.5, 1.5)
        norm.bias.data.uniform_(-0.2, 0.2)
    return model


def test_folded_copy_matches_the_model_and_leaves_it_untouched():
    model = resnet_with_learnt_norms().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    frozen = inference_copy(model, "fp32")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in frozen.modules())  # every conv->bn pair folded
    assert not any(p.requires_grad for p in frozen.parameters())
    x = torch.rand(4, 3, 64, 64)
    model.eval()
    with torch.no_grad():
        assert torch.allclose(frozen(x), model(x), atol=1e-4, rtol=1e-4)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.requires_grad for p in model.parameters())
    assert model.conv1.weight.is_contiguous()  # the caller's weights keep their layout


class DataDependent(nn.Module):
    """A forward that torch.fx cannot trace (Python branches on a tensor's value)."""

    def __init__(self):
        super().__init__()
        self.conv, self.norm, self.head = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 2)

    def forward(self, x):
        h = self.norm(self.conv(x))
        if h.mean() > 0:
            h = h.relu()
        return self.head(h.mean((2, 3)))


def test_untraceable_model_runs_unfolded():
    torch.manual_seed(1)
    model = DataDependent().eval()
    frozen = inference_copy(model, "fp32")
    x = torch.rand(3, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(frozen(x), model(x), atol=1e-6)


def test_bf16_stays_close_to_fp32_probabilities():
    model = trained_patch_cnn()
    x = patch_data(16, seed=5)[0]
    exact = torch.softmax(inference_copy(model, "fp32")(x), 1)
    rounded = torch.softmax(inference_copy(model, "bf16")(x), 1)
    assert rounded.dtype == torch.float32
    assert (rounded - exact).abs().max() < 0.02
    assert torch.equal(rounded.argmax(1), exact.argmax(1))


def test_precision_choices():
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) == "fp32"
    assert resolve_precision("bf16", cpu) == "bf16"
    assert resolve_precision("auto", cpu) in ("bf16", "fp32")
    with pytest.raises(InputError, match="precision: must be one of auto, bf16, fp32, got 'fp16'"):
        resolve_precision("fp16", cpu)
    with pytest.raises(InputError, match="precision"):
        lime_images(trained_patch_cnn(), patch_data(1, seed=0)[0], precision="half")


def test_fp32_lime_equals_lime_itself_on_the_plain_model():
    """Folding, layout and batching change nothing that LIME reports."""
    model = trained_patch_cnn()
    images, labels, _ = patch_data(2, seed=9)
    ours = lime_images(model, images, labels, num_samples=200, seed=4, precision="fp32")
    for i, label in enumerate(labels.tolist()):
        theirs = LimeImageExplainer(random_state=4).explain_instance(
            images[i].permute(1, 2, 0).numpy(), probability_fn(model.eval(), 3), labels=(label,), top_labels=None,
            num_samples=200, segmentation_fn=segmenter("quickshift", 4), random_seed=4)
        weights = np.zeros_like(ours.weights[i])
        for sid, weight in theirs.local_exp[label]:
            weights[sid] = weight
        assert np.allclose(ours.weights[i], weights, atol=1e-6)


def test_the_copy_is_reused_until_the_weights_change():
    model = trained_patch_cnn()
    x = patch_data(4, seed=1)[0]
    first = inference_copy(model, "fp32")
    assert inference_copy(model, "fp32") is first  # traced and folded once per model
    assert inference_copy(model, "bf16") is not first  # another precision is another copy
    with torch.no_grad():
        model[0].weight.mul_(2)  # an in-place change: torch bumps the tensor's version
    again = inference_copy(model, "fp32")
    assert again is not first
    with torch.no_grad():
        assert torch.allclose(again(x), model.eval()(x), atol=1e-5)
    model[-1].weight = nn.Parameter(torch.zeros_like(model[-1].weight))  # a new tensor
    with torch.no_grad():
        assert torch.allclose(inference_copy(model, "fp32")(x), model(x), atol=1e-5)


class MaskedConvNet(nn.Module):
    """A convolution and a 5-D constant, as torch.fx leaves timm Swin's attention masks."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.register_buffer("mask", torch.zeros(1, 4, 1, 1, 1))
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        x = (self.conv(x).unsqueeze(2) + self.mask).squeeze(2)
        return self.fc(x.mean((2, 3)))


def test_a_five_dimensional_buffer_does_not_stop_the_channels_last_copy():
    model = MaskedConvNet().eval()
    frozen = inference_copy(model, "fp32")  # raised "required rank 4 tensor to use channels_last format"
    assert frozen.model.conv.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.rand(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.allclose(frozen(x), model(x), atol=1e-6)
