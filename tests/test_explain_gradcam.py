import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from explain_helpers import accuracy, patch_data, tiny_cnn, trained_patch_cnn
from torch import nn

from xferdiag.errors import InputError
from xferdiag.explainers import find_target_layer, grad_cam, pointing_game

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: threads cost more than they save


@pytest.fixture(scope="module")
def trained():
    model = trained_patch_cnn(seed=0)
    x, y, masks = patch_data(60, seed=7)
    return model, x, y, masks


def test_peak_lands_in_the_patch(trained):
    model, x, y, masks = trained
    assert accuracy(model, x, y) >= 0.95
    has_patch = y < 2
    maps = grad_cam(model, x[has_patch])
    assert maps.shape == (int(has_patch.sum()), 32, 32)
    assert maps.min() >= 0 and maps.max() <= 1
    assert pointing_game(maps, masks[has_patch]).accuracy >= 0.9


def hand_grad_cam(model, x, layer, targets):
    """Grad-CAM from its definition: hooks for A, autograd for dy/dA."""
    saved = {}
    handle = layer.register_forward_hook(lambda m, i, o: saved.update(a=o))
    out = model(x)
    handle.remove()
    grads = torch.autograd.grad(out.gather(1, targets[:, None]).sum(), saved["a"])[0]
    weights = grads.mean((2, 3), keepdim=True)
    cam = F.relu((weights * saved["a"]).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False)[:, 0].detach()
    lo = cam.amin((1, 2), keepdim=True)
    span = cam.amax((1, 2), keepdim=True) - lo
    return torch.where(span > 0, (cam - lo) / span.clamp_min(1e-30), torch.zeros_like(cam))


@pytest.mark.parametrize("layer", ["3", "4", "7"])
def test_equals_hand_computation(layer):
    torch.manual_seed(1)
    model = tiny_cnn().eval()
    x = torch.rand(5, 3, 20, 24)
    targets = torch.tensor([0, 1, 2, 1, 0])
    expected = hand_grad_cam(model, x, dict(model.named_modules())[layer], targets)
    assert torch.allclose(torch.from_numpy(grad_cam(model, x, target_layer=layer, targets=targets)), expected, atol=1e-5)


def test_batched_targets_equal_per_image_calls():
    torch.manual_seed(2)
    model = tiny_cnn()
    x = torch.rand(7, 3, 16, 16)
    targets = [2, 0, 1, 1, 2, 0, 2]
    batched = grad_cam(model, x, targets=targets, batch_size=3)
    single = np.concatenate([grad_cam(model, x[i:i + 1], targets=[t]) for i, t in enumerate(targets)])
    assert np.allclose(batched, single, atol=1e-6)
    predicted = model.eval()(x).argmax(1)
    assert np.allclose(grad_cam(model, x, batch_size=2), grad_cam(model, x, targets=predicted), atol=1e-6)


def test_inplace_relu_works_and_state_is_restored():
    torch.manual_seed(3)
    plain = tiny_cnn()
    model = tiny_cnn(inplace=True)
    model.load_state_dict(plain.state_dict())
    model.train()
    x = torch.rand(4, 3, 16, 16)
    for layer in ("0", "6"):  # a conv whose output the in-place ReLU overwrites, and the default layer
        maps = grad_cam(model, x, target_layer=layer, targets=[0, 1, 2, 0])
        assert np.allclose(maps, grad_cam(plain, x, target_layer=layer, targets=[0, 1, 2, 0]), atol=1e-6)
    assert all(m.inplace for m in model.modules() if isinstance(m, nn.ReLU))
    assert all(m.training for m in model.modules())


def test_torchvision_resnet_with_partly_frozen_model():
    torch.manual_seed(4)
    model = torchvision.models.resnet18(weights=None, num_classes=3)
    model.train()
    model.layer1.eval()  # a frozen block stays in eval mode
    before = copy.deepcopy(model.state_dict())
    maps = grad_cam(model, torch.rand(2, 3, 64, 64))
    assert maps.shape == (2, 64, 64) and np.isfinite(maps).all()
    assert model.training and not model.layer1.training and model.layer2.training
    assert all(m.inplace for m in model.modules() if isinstance(m, nn.ReLU))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # BN statistics untouched


def test_default_target_layer():
    x = torch.rand(1, 3, 32, 32)
    assert find_target_layer(torchvision.models.resnet18(weights=None), x) == "layer4"
    assert find_target_layer(tiny_cnn(), x) == "7"  # the ReLU after the last conv

    class Wrapped(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = torchvision.models.resnet18(weights=None)
            self.head = nn.Linear(1000, 2)

        def forward(self, x):
            return self.head(self.backbone(x))

    assert find_target_layer(Wrapped(), x) == "backbone.layer4"


def test_constant_map_is_zeros():
    model = nn.Sequential(nn.Conv2d(3, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2))
    maps = grad_cam(model, torch.rand(2, 3, 8, 8), target_layer="1")  # 1x1 spatial output
    assert np.array_equal(maps, np.zeros((2, 8, 8)))


def test_bad_inputs():
    model = tiny_cnn()
    x = torch.rand(2, 3, 16, 16)
    with pytest.raises(InputError, match=r"target_layer: no module named 'layer9'.*valid names include 0, 3, 6"):
        grad_cam(model, x, target_layer="layer9")
    with pytest.raises(InputError, match=r"images: expected a 4-D batch"):
        grad_cam(model, x[0])
    with pytest.raises(InputError, match=r"targets: class indices must lie in 0\.\.2"):
        grad_cam(model, x, targets=[0, 3])
    with pytest.raises(InputError, match=r"targets: expected one class index per image \(2\)"):
        grad_cam(model, x, targets=[0])
    with pytest.raises(InputError, match=r"model: .*has no nn.Conv2d"):
        grad_cam(nn.Sequential(nn.Flatten(), nn.Linear(768, 2)), x)
    with pytest.raises(InputError, match=r"target_layer: '9'.*spatial"):
        grad_cam(model, x, target_layer="9")
    with pytest.raises(InputError, match=r"images: contains NaN"):
        grad_cam(model, torch.full((1, 3, 8, 8), float("nan")))
