"""Object detection: COCO/VOC/YOLO data, detectors on any backbone, a paired scratch arm and an mAP verdict."""
