"""Detection settings a user reaches from the command line: --detector-norm (GroupNorm for a fair scratch
arm), --detector-scale (CPU scale or torchvision's own sampling), --image-size as the detector's shorter side and
--fpn-channels (the pyramid's width on --backbone); and a classifier run that refuses them instead of ignoring them."""

from __future__ import annotations

import pytest
from torch import nn

from xferdiag.cli import main
from xferdiag.config import RunConfig
from xferdiag.errors import ConfigError
from xferdiag.tasks.detection.prepare import input_spec, new_detector, prepare
from xferdiag.tasks.detection.settings import CPU_SCALE, TORCHVISION, settings_for, settings_in_effect


def test_scale_names_and_image_size_give_known_settings():
    assert settings_for("cpu") == CPU_SCALE and settings_for("torchvision") == TORCHVISION
    scaled = settings_for("cpu", 256)
    assert (scaled.min_size, scaled.max_size) == (256, 384)  # CPU scale's 128:192 kept
    assert scaled.box_batch_size_per_image == CPU_SCALE.box_batch_size_per_image
    assert (settings_for("torchvision", 416).min_size, settings_for("torchvision", 416).max_size) == (416, None)


def test_a_detector_is_built_with_the_chosen_norm_scale_and_size():
    config = RunConfig(data="unused", model="fasterrcnn_mobilenet_v3_large_320_fpn", detector_norm="group",
                       detector_scale="torchvision", image_size=160)
    model = new_detector(config, 2, use_pretrained=False, seed=0)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert any(isinstance(m, nn.GroupNorm) for m in model.modules())
    settings = settings_in_effect(model.detector)
    # the builder's own 320:640 cap kept in proportion, torchvision's own sampling left alone
    assert (settings["min_size"], settings["max_size"]) == (160, 320)
    assert settings["rpn_batch_size_per_image"] == 256 and settings["box_batch_size_per_image"] == 512
    assert model.describe()["norm"] == "group"
    spec = input_spec(model, config)
    assert spec.size == 160 and "--image-size" in spec.origin and "torchvision's default sampling" in spec.origin


def test_unknown_detector_settings_end_in_one_line():
    with pytest.raises(ConfigError, match="detector_norm: unknown value 'layer'"):
        RunConfig(detector_norm="layer")
    with pytest.raises(ConfigError, match="detector_scale: unknown value 'gpu'"):
        RunConfig(detector_scale="gpu")
    with pytest.raises(ConfigError, match="fpn_channels"):
        RunConfig(fpn_channels=0)


def test_fpn_channels_set_the_pyramid_on_a_backbone_and_only_there():
    """--fpn-channels 256 gives every pyramid level 256 channels (run.json records it); 128 stays the default;
    a torchvision detector by name has its own pyramid, so the option is refused there, not ignored."""
    for width in (RunConfig.fpn_channels, 256):
        config = RunConfig(data="unused", model="fasterrcnn", backbone="mobilenet_v2", fpn_channels=width)
        model = new_detector(config, 1, use_pretrained=False, seed=0)
        assert model.describe()["fpn_channels"] == width
        assert {m.out_channels for m in model.detector.backbone.fpn.layer_blocks} == {width}
    assert RunConfig.fpn_channels == 128
    named = RunConfig(data="unused", model="fasterrcnn_mobilenet_v3_large_320_fpn", fpn_channels=256, pretrained_checkpoint="w.pt")
    with pytest.raises(ConfigError, match="fpn_channels: sets the pyramid xferdiag puts on --backbone"):
        prepare(None, named)


@pytest.mark.parametrize("flag", [["--detector-norm", "group"], ["--detector-scale", "torchvision"], ["--backbone", "resnet18"],
                                  ["--fpn-channels", "256"]])
def test_a_classifier_run_refuses_detector_settings(flag, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["finetune", "--data", "digits:rotated", "--epochs", "1", "--seeds", "1", "--out", str(out), *flag]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "applies to detection runs only" in err[0] and f"{flag[0]}:" in err[0]
    assert not out.exists()
