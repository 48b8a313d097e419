"""Image files on disk: which suffixes are images, and a header check that decodes no pixels. Torch-free and
outside the ``data`` package (whose loaders bring torch), so the detection readers, and the report's gallery
through them, read images without loading a model library."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from .errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def check_header(path: Path) -> tuple[str, tuple[int, int]]:
    """Read the header and check the file's integrity without decoding pixels; return the image mode and
    (width, height)."""
    try:
        with Image.open(path) as img:
            mode, size = img.mode, img.size
            img.verify()  # PNG: every chunk's CRC, so a truncated file fails here, before a run starts
    except Exception as exc:  # hostile files reach odd corners of the decoders (struct.error, decompression bombs)
        raise DataError(f"{path}: not a readable image ({exc or type(exc).__name__}); remove or replace it") from None
    return mode, size
