"""Detection under autocast (``--amp``). No GPU here: the CPU's bfloat16 autocast stands in for CUDA's to check the
code paths and dtypes (CUDA's own op lists are not exercised; docs/scaling.md says what was and was not verified)."""

from __future__ import annotations

import pytest
import torch

from xferdiag.tasks.detection.models import build_detection_model
from xferdiag.tasks.detection.settings import settings_for
from xferdiag.tasks.detection.task import DetectionTask


@pytest.fixture(scope="module")
def detector_and_batch():
    torch.manual_seed(0)
    model = build_detection_model("fasterrcnn", 2, backbone="mobilenet_v2", norm="batch", settings=settings_for("cpu", 128))
    images = [torch.rand(3, 128, 128, generator=torch.Generator().manual_seed(k)) for k in range(2)]
    targets = [{"boxes": torch.tensor([[10.0, 20.0, 70.0, 90.0]]), "labels": torch.tensor([k + 1]), "image_id": k + 1,
                "size": (128, 128)} for k in range(2)]
    return model, images, targets


def test_training_losses_stay_float32_under_bfloat16_autocast(detector_and_batch):
    model, images, targets = detector_and_batch
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        parts = model(images, targets)
        loss = DetectionTask().train_loss(model, images, targets)
    assert {name: value.dtype for name, value in parts.items()} == dict.fromkeys(parts, torch.float32)
    assert set(parts) == {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    model.zero_grad()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_evaluation_boxes_are_float32_and_equal_the_plain_forward_under_autocast(detector_and_batch):
    model, images, _ = detector_and_batch
    model.eval()
    with torch.inference_mode():
        plain = model(images)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            raw = model(images)
            guarded = DetectionTask().predict_batch(model, images)
    assert raw[0]["boxes"].dtype == torch.bfloat16  # what torchvision gives inside autocast: boxes on a bfloat16 grid
    for mine, reference in zip(guarded, plain, strict=True):
        assert mine["boxes"].dtype == mine["scores"].dtype == torch.float32
        torch.testing.assert_close(mine["boxes"], reference["boxes"], rtol=0, atol=0)
        torch.testing.assert_close(mine["scores"], reference["scores"], rtol=0, atol=0)
        assert torch.equal(mine["labels"], reference["labels"])
