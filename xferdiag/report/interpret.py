"""Every threshold and sentence the report, ``analyze`` and the recommendations use to put numbers into words."""

from __future__ import annotations


def interpret_shift(result: dict) -> list[str]:
    """Plain sentences for the report, each tied to the number it comes from."""
    lines = []
    mmd, pad, c2st = result["mmd"], result["proxy_a_distance"], result["c2st"]
    if mmd["p_value"] < 0.05:
        lines.append(f"Source and target features come from different distributions (MMD permutation test p = {mmd['p_value']:.3g}).")
    else:
        lines.append(f"The MMD test finds no significant difference between source and target features (p = {mmd['p_value']:.3g}).")
    size = "large" if pad["value"] > 1.5 else "moderate" if pad["value"] > 0.5 else "small"
    lines.append(f"A linear domain classifier reaches proxy A-distance {pad['value']:.2f} of 2: the shift is {size}.")
    lines.append(f"A held-out domain classifier is {100 * c2st['accuracy']:.0f}% accurate (50% would mean no shift).")
    lines.append(f"{100 * result['ks']['fraction_shifted']:.0f}% of feature dimensions shift (KS tests, Benjamini-Hochberg).")
    if result.get("per_feature"):
        shifted = sorted((f for f in result["per_feature"] if f["shifted"]), key=lambda f: -f["ks_statistic"])
        named = ", ".join(f"{f['name']} (SMD {f['smd']:+.2f})" for f in shifted[:3])
        lines.append(f"{len(shifted)} of {len(result['per_feature'])} input features shift (KS tests, Benjamini-Hochberg)"
                     + (f"; most: {named}." if shifted else "."))
    if result["label_shift"]["total_variation"] > 0.1:
        lines.append(f"Class frequencies differ too (total variation {result['label_shift']['total_variation']:.2f}).")
    return lines
