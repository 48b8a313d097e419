"""Object detection: COCO evaluation from per-image match tables, its paired image bootstrap."""
