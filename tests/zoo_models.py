"""Small members of the torchvision families whose smallest named model is too big for a test.

Each is built from torchvision's own class with the family's layout (a ViT's encoder of blocks,
MaxViT's ModuleList of stages, Swin's stages, VGG's Sequential classifier of Linear-ReLU-Dropout),
only narrower and shallower, so the contract test exercises the same code paths at a fraction of
the cost. They are named in runs as ``tests.zoo_models:NAME``, the ``module:function`` spec.
"""

from __future__ import annotations

from torch import nn
from torchvision import models

SIZE = 32


def vit(num_classes: int = 10) -> nn.Module:
    return models.VisionTransformer(image_size=SIZE, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64,
                                    num_classes=num_classes)


def maxvit(num_classes: int = 10) -> nn.Module:
    return models.MaxVit(input_size=(SIZE, SIZE), stem_channels=8, partition_size=2, block_channels=[8, 16],
                         block_layers=[1, 1], head_dim=4, stochastic_depth_prob=0.0, num_classes=num_classes)


def swin(num_classes: int = 10) -> nn.Module:
    return models.SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[1, 1], num_heads=[1, 2], window_size=[2, 2],
                                  num_classes=num_classes)


def vgg(num_classes: int = 10) -> nn.Module:
    """VGG-11's convolutions, with the classifier's two 4096-wide layers narrowed to 64 (102 M -> 1.6 M weights)."""
    model = models.vgg11(num_classes=num_classes)
    model.classifier = nn.Sequential(nn.Linear(512 * 7 * 7, 64), nn.ReLU(True), nn.Dropout(), nn.Linear(64, 64),
                                     nn.ReLU(True), nn.Dropout(), nn.Linear(64, num_classes))
    return model


def timm_vit(num_classes: int = 10) -> nn.Module:
    import timm

    return timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=SIZE, patch_size=8, depth=2,
                             num_classes=num_classes)


def timm_swin(num_classes: int = 10) -> nn.Module:
    """timm's Swin with shifted windows (two blocks per stage): torch.fx turns its attention masks
    into 5-D constants, which a whole-model channels-last conversion cannot take."""
    import timm

    return timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, img_size=SIZE, patch_size=4, window_size=2,
                             embed_dim=16, depths=(2, 2), num_heads=(1, 2), num_classes=num_classes)
