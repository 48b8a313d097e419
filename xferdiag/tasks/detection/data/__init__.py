"""Detection data: one in-memory form (:class:`DetectionData`) read from COCO, VOC or YOLO folders or generated
as semi-synthetic scenes; its COCO ground truth, splits by image, K shots per class, a dataset card, and
box-aware augmentation that both arms see alike. :class:`BoxAugment` (torchvision) is imported on first use, so
a torch-free reader (the report's gallery) can read the data."""

from .card import DatasetCard, dataset_card
from .core import DetectionData, DetImage, to_coco
from .load import detect_format, load_detection
from .scenes import make_scenes
from .selection import ShotSelection, split_images, take_shots
from .writers import write_coco, write_voc, write_yolo

__all__ = ["BoxAugment", "DatasetCard", "DetImage", "DetectionData", "ShotSelection", "dataset_card", "detect_format", "load_detection",
           "make_scenes", "split_images", "take_shots", "to_coco", "write_coco", "write_voc", "write_yolo"]


def __getattr__(name: str):
    """``BoxAugment`` on first use (PEP 562): reading data needs no torch."""
    if name == "BoxAugment":
        from .augment import BoxAugment

        return BoxAugment
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
