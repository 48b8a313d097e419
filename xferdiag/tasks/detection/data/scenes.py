"""Semi-synthetic detection scenes from real photos, with exact boxes, offline.

No registry package ships a detection set with human box annotations, so real object crops (faces from
scikit-image's ``lfw_subset``, scikit-learn's digits, Fashion-MNIST items where Debian's package is
installed) are pasted with feathered (soft alpha) edges, at random scales and positions, onto random
crops of real photos and textures (scikit-image and scikit-learn sample images). Each box is the
extent of the pasted alpha above :data:`VISIBLE`, so nothing of an object shows outside its box. These
scenes test the machinery (readers, detectors, the paired verdict), not real-world detection.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

from ...._validate import check_scalar
from ....errors import InputError
from .core import DetectionData, DetImage, box_arrays

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "china", "flower")
TEXTURES = ("brick", "grass", "gravel")
BACKGROUNDS = {"photos": PHOTOS, "textures": TEXTURES, "all": PHOTOS + TEXTURES}
KINDS = {"face": "faces from scikit-image's lfw_subset (Labeled Faces in the Wild)",
         "digit": "handwritten digits from scikit-learn's load_digits",
         "fashion": "Fashion-MNIST items (Debian's dataset-fashion-mnist)"}
CORRUPTIONS = ("fog", "noise", "blur")
MAX_SEVERITY = 5
# Alpha below this is set to zero, so that the box (the extent of the rest) holds everything visible.
VISIBLE = 0.05
# Objects are placed so that no two overlap by more than this IoU (a few tries, else the object is dropped).
MAX_IOU = 0.1


@cache
def background(name: str) -> np.ndarray:
    """A real photo or texture as uint8 (H, W, 3), read from the installed packages."""
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        return np.ascontiguousarray(load_sample_image(f"{name}.jpg"))
    from skimage import data

    image = getattr(data, name)()
    return np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else np.ascontiguousarray(image[:, :, :3])


@cache
def object_pool(kind: str) -> tuple[np.ndarray, bool]:
    """Gray object crops in [0, 1] (n, h, w) and whether they fill their square (faces) rather than being
    bright strokes on black (digits, clothing), whose alpha follows their intensity."""
    if kind == "face":
        from skimage import data

        return data.lfw_subset()[:100].astype(np.float32), True
    if kind == "digit":
        from sklearn.datasets import load_digits

        return (load_digits().images / 16.0).astype(np.float32), False
    if kind == "fashion":
        from ....modalities.image.fashion import load_fashion_mnist

        return load_fashion_mnist("test")[0][:1000, 0].numpy(), False
    raise InputError(f"object kind {kind!r}: choose from {', '.join(KINDS)}")


def _feather(side: int) -> np.ndarray:
    """A square alpha that is 1 inside and ramps down over the outer ~15% toward (not to) zero."""
    width = max(1, round(0.15 * side))
    ramp = np.minimum(1.0, (np.minimum(np.arange(side), np.arange(side)[::-1]) + 1) / (width + 1))
    return np.minimum(ramp[:, None], ramp[None, :]).astype(np.float32)


def _resize(gray: np.ndarray, side: int) -> np.ndarray:
    return np.asarray(Image.fromarray(gray).resize((side, side), Image.BILINEAR), dtype=np.float32)


def _object(kind: str, side: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One object as RGB in [0, 1] (side, side, 3) and its alpha."""
    pool, fills = object_pool(kind)
    gray = np.clip(_resize(pool[rng.integers(len(pool))], side), 0.0, 1.0)
    if fills:
        return np.repeat(gray[:, :, None], 3, axis=2), _feather(side)
    colour = rng.uniform(0.35, 1.0, size=3).astype(np.float32)
    return gray[:, :, None] * colour, np.clip(gray * 2.5, 0.0, 1.0)


def _crop(name: str, size: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A random square crop of a background, resized to ``size``; and where it came from."""
    photo = background(name)
    height, width = photo.shape[:2]
    side = int(rng.uniform(0.35, 1.0) * min(height, width))
    y, x = int(rng.integers(height - side + 1)), int(rng.integers(width - side + 1))
    crop = Image.fromarray(photo[y:y + side, x:x + side]).resize((size, size), Image.BILINEAR)
    return np.asarray(crop, dtype=np.float32) / 255.0, f"{name} crop x={x} y={y} side={side}"


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union


def _paste(canvas: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, x: int, y: int) -> np.ndarray:
    """Blend an object in place; return its exact box (the extent of its visible alpha)."""
    alpha = np.where(alpha >= VISIBLE, alpha, 0.0)[:, :, None]
    side = alpha.shape[0]
    region = canvas[y:y + side, x:x + side]
    region[:] = region * (1.0 - alpha) + rgb * alpha
    rows, cols = np.flatnonzero(alpha[:, :, 0].any(axis=1)), np.flatnonzero(alpha[:, :, 0].any(axis=0))
    return np.array([x + cols[0], y + rows[0], x + cols[-1] + 1, y + rows[-1] + 1], dtype=np.float32)


def corrupt(image: np.ndarray, kind: str, severity: int, rng: np.random.Generator) -> np.ndarray:
    """A whole-image corruption of ``severity`` 0 (none) .. 5 on a float (H, W, 3) image in [0, 1]."""
    if severity == 0:
        return image
    if kind == "noise":
        return np.clip(image + rng.normal(0.0, 0.04 * severity, image.shape), 0.0, 1.0)
    if kind == "blur":
        return gaussian_filter(image, sigma=(0.6 * severity, 0.6 * severity, 0))
    if kind == "fog":
        field = gaussian_filter(rng.random(image.shape[:2]), sigma=image.shape[0] / 8)
        field = (field - field.min()) / max(float(np.ptp(field)), 1e-8)
        density = (0.12 * severity) * (0.5 + 0.5 * field)[:, :, None]
        return image * (1.0 - density) + 0.85 * density
    raise InputError(f"corruption {kind!r}: choose from {', '.join(CORRUPTIONS)}")


def _scene(k: int, seed: int, options: dict) -> DetImage:
    rng = np.random.default_rng([seed, k])
    size, kinds = options["size"], options["kinds"]
    pool = options["backgrounds"]
    crops = rng if options["background_seed"] is None else np.random.default_rng([options["background_seed"], k])
    canvas, source = _crop(pool[crops.integers(len(pool))], size, crops)
    count = 0 if rng.random() < options["empty_fraction"] else int(rng.integers(1, options["max_objects"] + 1))
    boxes, labels = [], []
    for _ in range(count):
        label = int(rng.integers(len(kinds)))
        side = int(round(rng.uniform(*options["scale"]) * size))
        for _try in range(10):
            x, y = (int(v) for v in rng.integers(0, size - side + 1, size=2))
            square = np.array([x, y, x + side, y + side], dtype=np.float32)
            if all(_iou(square, b) <= MAX_IOU for b in boxes):
                rgb, alpha = _object(kinds[label], side, rng)
                boxes.append(_paste(canvas, rgb, alpha, x, y))
                labels.append(label)
                break
    if options["corruption"]:
        canvas = corrupt(canvas, options["corruption"], options["severity"], rng)
    pixels = np.round(np.clip(canvas, 0.0, 1.0) * 255).astype(np.uint8)
    return DetImage(k + 1, f"scene_{k:04d}.png", size, size, *box_arrays(boxes, labels, [False] * len(labels)),
                    pixels=pixels, source=source)


def _pool(backgrounds: str | tuple[str, ...]) -> tuple[str, ...]:
    names = BACKGROUNDS.get(backgrounds) if isinstance(backgrounds, str) else tuple(backgrounds)
    if not names or any(name not in BACKGROUNDS["all"] for name in names):
        raise InputError(f"backgrounds {backgrounds!r}: choose {', '.join(BACKGROUNDS)} or names from {', '.join(BACKGROUNDS['all'])}")
    return names


def make_scenes(n: int, seed: int = 0, *, size: int = 128, kinds: tuple[str, ...] = ("face",),
                backgrounds: str | tuple[str, ...] = "photos", corruption: str | None = None, severity: int = 0,
                max_objects: int = 3, empty_fraction: float = 0.1, scale: tuple[float, float] = (0.18, 0.45),
                background_seed: int | None = None) -> DetectionData:
    """``n`` seeded scenes: one class per object kind (``kinds``), 0..``max_objects`` objects each (none in
    about ``empty_fraction`` of them), backgrounds from a pool ('photos', 'textures', 'all' or names), and
    optionally a whole-image ``corruption`` of ``severity`` 1..5. Scene ``k`` depends only on (seed, k).
    With ``background_seed`` the background crops come from their own stream, so the objects, their places and any
    corruption depend on ``seed`` alone: the same ``seed`` on another pool pastes the same objects on other backgrounds."""
    n = check_scalar(n, "n", int, 1)
    size = check_scalar(size, "size", int, 32)
    max_objects = check_scalar(max_objects, "max_objects", int, 1)
    severity = check_scalar(severity, "severity", int, 0, MAX_SEVERITY)
    empty_fraction = check_scalar(empty_fraction, "empty_fraction", float, 0.0, 1.0, inclusive=(True, True))
    if not kinds or any(kind not in KINDS for kind in kinds) or len(set(kinds)) != len(kinds):
        raise InputError(f"kinds {kinds!r}: distinct object kinds from {', '.join(KINDS)}")
    if not 0 < scale[0] <= scale[1] <= 1:
        raise InputError(f"scale {scale!r}: two fractions of the scene size, 0 < low <= high <= 1")
    if corruption is not None and corruption not in CORRUPTIONS:
        raise InputError(f"corruption {corruption!r}: choose from {', '.join(CORRUPTIONS)}")
    options = {"size": size, "kinds": tuple(kinds), "backgrounds": _pool(backgrounds), "corruption": corruption,
               "severity": severity, "max_objects": max_objects, "empty_fraction": empty_fraction, "scale": tuple(scale),
               "background_seed": None if background_seed is None else check_scalar(background_seed, "background_seed", int, 0)}
    images = tuple(_scene(k, seed, options) for k in range(n))
    return DetectionData(f"scenes:seed={seed}", "scenes", tuple(kinds), images, provenance=_provenance(n, seed, options))


def _provenance(n: int, seed: int, options: dict) -> str:
    objects = "; ".join(KINDS[kind] for kind in options["kinds"])
    shift = f", then {options['corruption']} of severity {options['severity']}" if options["corruption"] and options["severity"] else ""
    return (f"{n} semi-synthetic {options['size']} px scenes (seed {seed}): {objects}, pasted with feathered edges at random "
            f"scales and positions onto random crops of {', '.join(options['backgrounds'])}{shift}; boxes are exact. "
            "Such scenes test the machinery, not real-world detection.")
