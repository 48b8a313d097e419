"""Detection data: how fast semi-synthetic scenes are made, and what reading a COCO/VOC/YOLO folder costs
beside pycocotools' own COCO index (which checks no image and no box: the gap is xferdiag's checks).

    python -m benchmarks.bench_detection_data [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from xferdiag.tasks.detection.data import load_detection, make_scenes, write_coco, write_voc, write_yolo
from xferdiag.tasks.detection.data.scenes import background, object_pool

FULL = {"scenes": 400, "folder": 500}
QUICK = {"scenes": 100, "folder": 100}
SCENES_TARGET_S = 2.0  # per 100 scenes, pools already loaded
READ_TARGET_MS = 10.0  # per image, every box and image header checked


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - start


def _scene_rows(n: int) -> list[dict]:
    background.cache_clear()
    object_pool.cache_clear()
    _, cold_s = _timed(make_scenes, 100, 0, kinds=("face", "digit"))
    data, warm_s = _timed(make_scenes, n, 1, kinds=("face", "digit"))
    per_100 = warm_s / n * 100
    return [{"name": f"scenes: {n} of 128 px, faces and digits", "xferdiag_s": warm_s, "rate": n / warm_s,
             "target": f"100 scenes < {SCENES_TARGET_S:g} s (photos and objects loaded)", "met": per_100 < SCENES_TARGET_S,
             "notes": f"first 100 with loading the photos and objects: {cold_s:.2f} s; "
                      f"{sum(len(i.boxes) for i in data.images)} boxes"}]


def _peer_coco(path: Path) -> float:
    from pycocotools.coco import COCO

    return _timed(COCO, str(path))[1]


def _read_rows(n: int, tmp: Path) -> list[dict]:
    data = make_scenes(n, 2, kinds=("face", "digit"))
    rows = []
    for fmt, writer in (("coco", write_coco), ("voc", write_voc), ("yolo", write_yolo)):
        writer(data, tmp / fmt)
        _, seconds = _timed(load_detection, f"{fmt}:{tmp / fmt}")
        row = {"name": f"read {fmt}: {n} images", "xferdiag_s": seconds, "rate": n / seconds,
               "target": f"< {READ_TARGET_MS:g} ms per image", "met": seconds / n * 1000 < READ_TARGET_MS}
        if fmt == "coco":
            try:
                peer_s = _peer_coco(tmp / fmt / "annotations" / "instances.json")
            except ModuleNotFoundError:
                row["notes"] = "pycocotools not installed"
            else:
                row.update(peer="pycocotools COCO() index (no image or box checked)", peer_s=peer_s, ratio=peer_s / seconds)
        rows.append(row)
    return rows


def main(quick: bool = False) -> list[dict]:
    size = QUICK if quick else FULL
    rows = _scene_rows(size["scenes"])
    with tempfile.TemporaryDirectory(prefix="xferdiag-bench-det-") as tmp:
        rows += _read_rows(size["folder"], Path(tmp))
    print(f"{'benchmark':<40} {'xferdiag s':>10} {'per s':>8} {'peer s':>8}  met")
    for row in rows:
        peer = f"{row['peer_s']:>8.3f}" if "peer_s" in row else f"{'-':>8}"
        print(f"{row['name']:<40} {row['xferdiag_s']:>10.3f} {row['rate']:>8.0f} {peer}  {row['met']}")
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 scenes, 100-image folders")
    main(quick=parser.parse_args().quick)
