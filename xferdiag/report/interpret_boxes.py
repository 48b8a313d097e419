"""The words of the box explanation section of a detection run (D-RISE and EigenCAM per box): :mod:`.interpret`'s
part for it, kept beside it because that module is at its length limit."""

from __future__ import annotations

from . import fmt

BOX_METHODS_WORDS = "D-RISE and EigenCAM per box"
BOX_KINDS = {"missed": "ground-truth box an arm missed (best match scored under 0.5)",
             "top": "highest-scoring detection of the first arm",
             "disagreement": "detection on which the arms' scores differ most"}
BOX_POINTING_LEGEND = ("Pointing: the share of the D-RISE map's positive mass inside the box (the energy-based pointing "
                       "game); a map that knows nothing of the box puts the box's share of the image area there, so a "
                       "box passes when its share exceeds that area share.")
BOX_FLAT_EIGENCAM = ("A blank EigenCAM tile is constant inside its box: the last stage's first component is cut to zero "
                     "or flat across the box (as when a few coarse cells cover it), so EigenCAM shows nothing there.")


def box_explanation_sentences(index: dict) -> list[str]:
    """What the box explanations show: how many boxes were explained, the pointing game per arm, the randomisation check."""
    rows, arms = index.get("boxes") or [], index.get("arms") or []
    explained, asked = len(rows), index.get("boxes_requested")
    candidates = sum((index.get("candidates") or {}).values())
    out = [f"{explained} box{'es' if explained != 1 else ''} explained of the {asked} requested "
           f"({candidates} candidates among the test images' missed ground truths and detections)."]
    for arm in arms:
        passed = [r for r in rows if (r.get("pointing_passed") or {}).get(arm)]
        out.append(f"{arm}: the D-RISE map points into the box for {len(passed)} of {explained} boxes.")
    check = index.get("randomisation")
    if check:
        similarity = fmt.num(check.get("similarity_after_randomisation"), 2)
        out.append(f"Randomisation check ({check.get('arm')}, {check.get('boxes')} box{'es' if check.get('boxes') != 1 else ''}): "
                   + (f"the maps of the randomised detector still rank pixels alike (|ρ| {similarity} > "
                      f"{check.get('threshold')}): D-RISE shows the image more than the detector here; do not trust the maps."
                      if check.get("flagged") else
                      f"the maps change once the detector's weights are randomised (|ρ| {similarity} ≤ {check.get('threshold')}): "
                      "they depend on what the detector learned (passed)."))
    return out
