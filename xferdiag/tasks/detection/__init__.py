"""Object detection: data formats, detectors on any backbone, and their evaluation."""
