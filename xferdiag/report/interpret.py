"""Every threshold and sentence the report, ``analyze`` and the recommendations use to put numbers into words.

One owner for each cut-off, so no two places can call the same number by different names: the
sentences ``analyze`` stores in shift.json, the legends beside the report's tables and the evidence
behind a recommendation all read the constants below, each with the reason for its value.
"""

from __future__ import annotations

from ..negative import ALPHA  # one significance level: the verdict's, and every test whose run file records none
from . import fmt

# Proxy A-distance runs from 0 (domains indistinguishable) to 2 (perfectly separable); above 1 a
# linear classifier separates source from target features most of the time, above 0.5 often.
LARGE_PROXY_A = 1.0
MODERATE_PROXY_A = 0.5
# Total variation between the class proportions of source and target worth a sentence of its own.
LABEL_SHIFT_TV = 0.1
# A standardised mean difference above 0.8 (Cohen's "large") moves a feature's whole distribution.
LARGE_SMD = 0.8
# A layer at or above this CKA kept its pretrained representation almost unchanged.
KEPT_CKA = 0.9
# A 95% interval wider than 5 accuracy points cannot settle effects that usually matter in practice.
WIDE_CI = 0.05
# Median relative weight change below 5%: the pretrained layers stayed almost where they started.
SMALL_WEIGHT_CHANGE = 0.05
# The gap must shrink by at least 2 points from the smallest to the largest training set to count.
SHRINKING_GAP = 0.02

SHIFT_LEGEND = {  # what each shift measurement means, beside its value in the report
    "mmd": f"p below {ALPHA:g}: source and target feature distributions differ",
    "proxy_a_distance": f"0 = indistinguishable, 2 = perfectly separable; above {LARGE_PROXY_A:g} is a large shift",
    "frechet": "distance between Gaussian fits of the two feature sets; 0 = identical, compare across runs",
    "c2st": "a classifier telling source from target; 50% = it cannot",
    "label_shift": "difference in class proportions; 0 = same, 1 = disjoint",
}
LAYER_SHIFT_LEGEND = (
    "Each row runs the measures above on one layer's pooled features, on the same subsample of examples. MMD² "
    f"and its Benjamini–Hochberg adjusted p (below {ALPHA:g}: shifted) and the proxy A-distance (0 = indistinguishable, "
    f"2 = perfectly separable, above {LARGE_PROXY_A:g} large) and C2ST accuracy (50% = a classifier cannot tell the "
    "domains apart) compare across layers; the Fréchet distance is in each layer's own squared units, so compare it "
    "between runs at the same layer, not down the column.")
FEATURE_SHIFT_LEGEND = (
    "a two-sample Kolmogorov–Smirnov test per feature on the raw values, Benjamini–Hochberg adjusted p below "
    f"{ALPHA:g}. The standardised mean difference (SMD) is the target mean minus the source mean in pooled standard "
    f"deviations; above {LARGE_SMD:g} in size is a large difference.")


def shift_size(proxy_a: float) -> str:
    """'large', 'moderate' or 'small': the one banding of a proxy A-distance."""
    return "large" if proxy_a > LARGE_PROXY_A else "moderate" if proxy_a > MODERATE_PROXY_A else "small"


BOX_STATISTIC_NAMES = {"size": "box size (square root of the area share)", "aspect_ratio": "aspect ratio (width / height)",
                       "centre_x": "horizontal centre", "centre_y": "vertical centre", "boxes_per_image": "boxes per image"}


def box_shift_sentences(boxes: dict) -> list[str]:
    """What a detection run's box statistics say: which shift (KS tests, Benjamini-Hochberg), with their medians."""
    rows = boxes.get("statistics") or []
    if not rows:
        return []
    shifted = [row for row in rows if row.get("shifted")]
    how = f"KS tests, Benjamini-Hochberg at α = {boxes.get('alpha', ALPHA):g}"
    if not shifted:
        return [f"No box statistic shifts ({how})."]
    named = "; ".join(f"{BOX_STATISTIC_NAMES.get(row['name'], row['name'])} (median {row['median_source']:.3g} in the source, "
                      f"{row['median_target']:.3g} in the target, {fmt.p_is(row['p_adjusted'])})" for row in shifted)
    return [f"{len(shifted)} of {len(rows)} box statistics shift ({how}): {named}."]


def _level(name: str, level: dict) -> str:
    pad = level["proxy_a_distance"]
    return (f"{name} {pad['value']:.2f} (95% CI {pad['ci95'][0]:.2f} to {pad['ci95'][1]:.2f}; "
            f"domain classifier {100 * level['c2st']['accuracy']:.0f}% accurate)")


def level_sentences(result: dict) -> list[str]:
    """Which level of a detection run moved, the image (pooled features) or the objects in it (their boxes' own
    features): compared by the proxy A-distance and the domain classifier's accuracy, which do not grow with the
    number of features as MMD and Fréchet do. A level moved more only when its interval lies wholly above the other's."""
    instance = result.get("instance") or {}
    if instance.get("skipped"):
        return [f"No instance-level test: {instance['skipped']}."]
    objects = instance.get("objects")
    if not objects or "proxy_a_distance" not in result:
        return []
    image, boxes = result["proxy_a_distance"]["ci95"], objects["proxy_a_distance"]["ci95"]
    if image[0] > boxes[1]:
        verdict = ("The images moved more than the objects in them: the shift lies mostly around the objects (backgrounds, "
                   "scenes, lighting), less in the objects' own appearance.")
    elif boxes[0] > image[1]:
        verdict = "The objects moved more than the images as a whole: the shift lies in the objects' own appearance."
    elif max(result["proxy_a_distance"]["value"], objects["proxy_a_distance"]["value"]) <= MODERATE_PROXY_A:
        verdict = "Neither level moved much."
    else:
        verdict = "Both levels moved about as much (their intervals overlap)."
    parts = [_level("image level", result), _level("object boxes", objects)]
    if instance.get("background"):
        parts.append(_level("background boxes of the objects' sizes", instance["background"]))
    parts += [_level(f"class {row['class']}", row) for row in instance.get("per_class") or []]
    return [f"Proxy A-distance by level: {'; '.join(parts)}.", verdict]


def interpret_shift(result: dict) -> list[str]:
    """Plain sentences for the report, each tied to the number it comes from; a detection run with too few images
    for the feature tests (``features_skipped``) says why they are absent."""
    lines = _feature_sentences(result) if "mmd" in result else [f"No feature-level test: {result['features_skipped']}."]
    lines += level_sentences(result) + layer_shift_sentences(result.get("layers") or [])
    if result.get("compared"):
        lines.insert(0, f"Compared: {result['compared']}.")
    return lines + box_shift_sentences(result.get("boxes") or {}) + _more_sentences(result)


def _feature_sentences(result: dict) -> list[str]:
    """What the feature-level tests (MMD, domain classifiers, KS per dimension) say."""
    lines = []
    mmd, pad, c2st = result["mmd"], result["proxy_a_distance"], result["c2st"]
    if mmd["p_value"] < ALPHA:
        lines.append(f"Source and target features come from different distributions (MMD permutation test, {fmt.p_is(mmd['p_value'])}).")
    else:
        lines.append(f"The MMD test finds no significant difference between source and target features ({fmt.p_is(mmd['p_value'])}).")
    lines.append(f"A linear domain classifier reaches proxy A-distance {pad['value']:.2f} of 2: "
                 f"the shift is {shift_size(pad['value'])}.")
    lines.append(f"A held-out domain classifier is {100 * c2st['accuracy']:.0f}% accurate (50% would mean no shift).")
    lines.append(f"{100 * result['ks']['fraction_shifted']:.0f}% of feature dimensions shift (KS tests, Benjamini-Hochberg).")
    return lines


def _more_sentences(result: dict) -> list[str]:
    """What a table's input features, a text's words and the class proportions say."""
    lines = []
    if result.get("per_feature"):
        shifted = sorted((f for f in result["per_feature"] if f["shifted"]), key=lambda f: -f["ks_statistic"])
        named = ", ".join(f"{f['name']} (SMD {f['smd']:+.2f})" for f in shifted[:3])
        lines.append(f"{len(shifted)} of {len(result['per_feature'])} input features shift (KS tests, Benjamini-Hochberg)"
                     + (f"; most: {named}." if shifted else "."))
    words = result.get("separating_words") or []
    for side in ("target", "source"):
        named = ", ".join(w["word"] for w in words if w["side"] == side)
        if named:
            lines.append(f"Words that mark the {side} texts (linear domain classifier on TF-IDF): {named}.")
    if (result.get("label_shift") or {}).get("total_variation", 0.0) > LABEL_SHIFT_TV:  # none where the classes differ
        lines.append(f"Class frequencies differ too (total variation {result['label_shift']['total_variation']:.2f}).")
    return lines


def layer_shift_sentences(layers: list[dict]) -> list[str]:
    """Where the domains come apart, from the test at every layer (input to output)."""
    tested = [row for row in layers if "shifted" in row]
    if len(tested) < 2:
        return []
    shifted = [row["name"] for row in tested if row["shifted"]]
    how = f"MMD at each of {len(tested)} layers, Benjamini-Hochberg"
    if not shifted:
        line = f"No layer tells source from target ({how})."
    elif len(shifted) == len(tested):
        line = (f"Source and target differ at all {len(tested)} layers, the first ({tested[0]['name']}) included ({how}): "
                "the shift starts in low-level input statistics, not only in what deeper layers extract.")
    else:
        first = next(i for i, row in enumerate(tested) if row["shifted"])
        line = (f"{len(shifted)} of {len(tested)} layers tell source from target ({how}); the first is "
                f"{tested[first]['name']}" + (f", after {first} that do not." if first else "."))
    return [line, *_layer_classifier(tested)]


def _layer_classifier(tested: list[dict]) -> list[str]:
    """Where a linear domain classifier separates the domains most, set beside the first layer."""
    pads = [row.get("proxy_a_distance") for row in tested]
    if None in pads:
        return []
    top = max(range(len(pads)), key=pads.__getitem__)
    if pads[top] - min(pads) < 0.005:  # "most at the first layer" would name one of a tie
        return [f"A linear domain classifier separates source from target as well at every layer (proxy A-distance "
                f"{pads[top]:.2f} of 2 at all {len(pads)}, a {shift_size(pads[top])} shift)."]
    where = f"at the first layer, {tested[0]['name']}" if top == 0 else f"at {tested[top]['name']}"
    return [f"A linear domain classifier separates source from target most {where} (proxy A-distance {pads[top]:.2f} of 2, "
            f"a {shift_size(pads[top])} shift)" + (f"; at the first layer, {tested[0]['name']}, it reaches {pads[0]:.2f}." if top else ".")]


def large_shift_evidence(shift: dict | None) -> list[str]:
    """The measurements that call the shift large; empty when none does (or none was measured)."""
    if not shift:
        return []
    found = []
    proxy = (shift.get("proxy_a_distance") or {}).get("value")
    if proxy is not None and proxy > LARGE_PROXY_A:
        found.append(f"proxy A-distance {fmt.num(proxy)} (> {LARGE_PROXY_A:g}: source and target features separate easily)")
    p = (shift.get("mmd") or {}).get("p_value")
    if p is not None and p < ALPHA:
        found.append(f"MMD {fmt.p_is(p)} (< {ALPHA:g}: the feature distributions differ)")
    return found


def cka_sentences(layers: list[dict], frozen_strategy: str | None = None) -> list[str]:
    """CKA per layer in words that know which layers could change at all: a frozen layer's CKA of 1
    holds by construction and says nothing about what fine-tuning reused. ``frozen_strategy`` names
    the run's strategy when it is one that freezes the backbone."""
    frozen = {layer.get("name") for layer in layers if layer.get("weight_change") == 0}
    weighted = [layer for layer in layers if layer.get("weight_change") is not None]
    cka = [(layer.get("name", "?"), layer.get("cka_linear")) for layer in layers if layer.get("name") not in frozen]
    cka = [(n, v) for n, v in cka if v is not None]
    sentences = []
    if weighted and len(frozen) == len(weighted):
        how = f" (strategy '{frozen_strategy}')" if frozen_strategy else ""
        sentences.append(f"The backbone was frozen{how}: none of its {len(weighted)} layers changed, so their CKA of 1 "
                         "holds by construction; only the new head was trained.")
    elif cka:
        if frozen:
            sentences.append(f"{len(frozen)} of {len(weighted)} layers stayed frozen (weights unchanged); "
                             "the sentences below are about the layers that trained.")
        kept = [n for n, v in cka if v >= KEPT_CKA]
        lowest = min(cka, key=lambda nv: nv[1])
        if kept:
            sentences.append(f"{len(kept)} of {len(cka)} layers kept CKA ≥ {KEPT_CKA} ({', '.join(map(str, kept[:6]))}"
                             f"{' …' if len(kept) > 6 else ''}): their pretrained features were reused almost unchanged.")
        sentences.append(f"Layer '{lowest[0]}' changed most (CKA {fmt.num(lowest[1])}).")
    return sentences


def budget_sentence(budget: dict | None) -> str | None:
    """What the explanation budget cut, compared with what was asked (None when nothing was cut), and
    how the time estimate made before starting compares with the time the parts took."""
    if not budget or not budget.get("reductions"):
        return None
    asked, chosen = budget.get("requested") or {}, budget.get("chosen") or {}
    cuts, unit = [], "boxes" if "masks" in chosen else "examples"  # a detection run explains boxes, never on fewer masks
    if chosen.get("n") != asked.get("n"):
        cuts.append(f"{chosen.get('n')} of the {asked.get('n')} requested {unit} {'is' if chosen.get('n') == 1 else 'are'} explained")
    if chosen.get("masks") != asked.get("masks"):
        cuts.append(f"D-RISE draws {chosen.get('masks')} masks per box instead of {asked.get('masks')} (its quality floor)")
    if min(chosen.get("sanity_examples") or 0, chosen.get("n") or 0) < (chosen.get("n") or 0):
        cuts.append(f"the sanity check re-explains {chosen.get('sanity_examples')} of them")
    for key, name in (("lime_samples", "LIME"), ("shap_samples", "SHAP")):
        if name.lower() in (chosen.get("methods") or []) and chosen.get(key) != asked.get(key):
            cuts.append(f"{name} draws {chosen.get(key)} samples per example instead of {asked.get(key)}")
    if chosen.get("deletion_steps") != asked.get("deletion_steps"):
        cuts.append(f"deletion/insertion curves take {chosen.get('deletion_steps')} steps instead of {asked.get('deletion_steps')}")
    measured = budget.get("measured_s_by_part") or {}
    took = sum(measured.values())
    timing = f"estimated {_seconds(budget.get('estimated_s'))} s before starting, took {_seconds(took)} s"
    over = budget.get("budget_s") is not None and (budget.get("estimated_s") or 0) > budget["budget_s"]
    opening = (f"Even the smallest explanation needs more than the time budget of {_seconds(budget.get('budget_s'))} s"
               if over else f"To fit the time budget of {_seconds(budget.get('budget_s'))} s")
    return (f"{opening} ({timing}): " + "; ".join(cuts)
            + ". Give more time with --budget SECONDS (or --budget none) to explain everything asked.")


def _seconds(value) -> str:
    return fmt.DASH if value is None else f"{value:.0f}"


# Text explanations. A word is marked with its sign (+/−, underlined) when its |attribution| is at
# least this share of the largest |attribution| in its panel; fainter words keep only their tint,
# so a page printed without colour still shows the words that carry the explanation.
TEXT_MARK_SHARE = 0.25
TEXT_WORDS_LEGEND = ("Each word is tinted by its attribution to the explained class, summed over its subword tokens: "
                     "red and underlined with “+” pushes toward the class, blue with “−” and a dotted underline "
                     f"pushes away; only words with at least {TEXT_MARK_SHARE:.0%} of the panel's largest |value| get "
                     "a sign. Hover a word for its value.")
TEXT_FAITHFULNESS_LEGEND = ("ERASER, averaged over deleting 1–50% of the tokens: comprehensiveness is how far the class "
                            "probability falls when the top-ranked tokens are deleted (higher = the explanation found "
                            "what the model needs); sufficiency is how far it falls when only those tokens are kept "
                            "(lower = they alone carry the prediction).")


def plan_sentence(plan: dict | None, run: str) -> str | None:
    """What would decide an inconclusive verdict (verdict.json's ``plan``, see xferdiag.sequential), in
    words: seeds in total with the command that adds them to ``run``, or test examples, for the stated
    smallest gap and power; None without a plan."""
    if not plan or plan.get("min_effect") is None:
        return None
    gap, power = f"{fmt.num(100 * plan['min_effect'])}-point gap", f"{fmt.num(100 * (plan.get('power') or 0))}% power"
    now = plan.get("seeds_now")
    if plan.get("powered"):
        return (f"With {now} seeds a {gap} would have been called with at least {power}: the true gap is most likely "
                "smaller than that (a conservative estimate of the seed variance).")
    seeds, examples = plan.get("seeds"), plan.get("test_examples")
    if seeds is None and examples is None:
        return (f"Too uncertain to call, and no feasible extension would settle a {gap} with {power}: it needs more than "
                f"{plan.get('max_seeds')} seeds, and more test examples alone would not do. Choose a larger --min-effect "
                "if smaller gaps do not matter to you.")
    options = []
    if seeds is not None:
        command = f"xferdiag finetune --resume {run} --seeds {seeds}"
        options.append(f"about {seeds} seeds in total ({seeds - now} more: `{command}`)")
    else:
        options.append(f"more than {plan.get('max_seeds')} seeds")
    options.append(f"about {float(f'{examples:.2g}'):,.0f} test examples with these seeds" if examples is not None
                   else f"not more test examples alone (with {now} seeds, seed-to-seed variation may be too large)")
    return (f"Too uncertain to call. To decide a {gap} with {power} at the next look's level (α = {fmt.num(plan.get('alpha'))}): "
            f"{', or '.join(options)}; the seed estimate is conservative (an {plan.get('seed_variance')}).")


def looks_sentence(looks: list[dict] | None) -> str | None:
    """A verdict looked at after the run was extended: which look this is and the level it was held to."""
    if not looks or len(looks) < 2:
        return None
    seen = ", then ".join(f"{look.get('seeds')} seeds" for look in looks)
    return (f"Look {len(looks)} at this run ({seen}): seeds were added after an earlier verdict, so this one is held to "
            f"α = {fmt.num(looks[-1].get('alpha'))} to keep the chance of a false verdict over all looks near {ALPHA:g}.")


# --- detection ------------------------------------------------------------------------------------
# Up to this many classes get a precision-recall panel each; more are pooled into one curve (their mean).
PR_PANELS_MAX = 6
# Gallery: the images where the arms' AP50 differs most, boxes scoring at least this drawn (at most so many
# per arm, the highest first), on thumbnails this many pixels on the longer side (a few MB for the page).
GALLERY_IMAGES = 6
GALLERY_MIN_SCORE = 0.5
GALLERY_MAX_BOXES = 15
GALLERY_THUMB_PX = 288
# Below this AP50 an arm has few correct detections for an oracle to make room for: its TIDE losses stay
# small whatever its errors, so the breakdown says so rather than reading small losses as few errors.
TIDE_LOW_AP50 = 0.10
TIDE_NAMES = {  # what each TIDE error type is, as the breakdown's sentences name it
    "classification": "classification errors (a box on an object of another class)",
    "localisation": "localisation errors (the right class, IoU 0.1 to 0.5)",
    "both": "errors of both class and place",
    "duplicate": "duplicate detections",
    "background": "background false positives",
    "missed": "missed objects",
}


def tide_sentences(tide: dict, arms: list[str]) -> list[str]:
    """One sentence per error type whose difference between the arms has an interval clear of zero, then
    the unchanged types, then a caution for an arm too weak for its losses to show its errors."""
    a, b = arms[:2]
    out, unchanged, none = [], [], []
    for kind, d in (tide.get("difference") or {}).items():
        gap, ci = fmt.as_number(d.get("gap")), d.get("ci95") or [None, None]
        lo, hi = (fmt.as_number(v) for v in ci)
        lost = [fmt.as_number(((tide.get("arms") or {}).get(arm) or {}).get("lost", {}).get(kind)) for arm in (a, b)]
        if gap is None:
            continue
        if lo is not None and hi is not None and (lo > 0 or hi < 0):
            verb = "removed" if gap < 0 else "added"
            out.append(f"{a} {verb} {abs(gap) * 100:.1f} points of AP50 lost to {TIDE_NAMES.get(kind, kind)} "
                       f"compared with {b} (95% CI {fmt.ci_points(ci)}).")
        elif all(v == 0 for v in lost):
            none.append(kind)
        else:
            unchanged.append(kind)
    if unchanged:
        out.append(f"Unchanged within the interval: {', '.join(unchanged)}.")
    if none:
        out.append(f"Neither arm lost any AP50 to these types: {', '.join(none)}.")
    for arm in (a, b):
        ap50 = fmt.as_number(((tide.get("arms") or {}).get(arm) or {}).get("ap50"))
        if ap50 is not None and ap50 < TIDE_LOW_AP50:
            out.append(f"The {arm} arm's AP50 is only {fmt.pct(ap50)}: fixing one error type while the others remain "
                       "recovers little, so its losses understate how many errors it makes (see the counts).")
    return out


SWEPT_SETTINGS = {"strategy": "strategy", "lr": "learning rate", "backbone_lr_mult": "backbone learning-rate multiplier",
                  "layer_decay": "layer-wise learning-rate decay"}
"""How the report names a swept setting (the verdict's ``sweep.setting``)."""


def sweep_lede(sweep: dict, seeds: int) -> str:
    """What a sweep compared: its transfer arms against one scratch arm trained once for all of them."""
    name = SWEPT_SETTINGS.get(str(sweep.get("setting")), str(sweep.get("setting")))
    arms = sweep.get("arms") or []
    pinned = (f" An --lr sweep would change the scratch arm too, so its learning rate was pinned once for every arm: "
              f"{fmt.num(sweep.get('scratch_lr'))}." if sweep.get("setting") == "lr" else "")
    return (f"A sweep over the {name}: {len(arms)} transfer arms, each judged against one scratch arm trained once for all of "
            f"them (the same {seeds} seed{'s' if seeds != 1 else ''}, splits, data order and budget).{pinned} Arms are ranked "
            f"by their gap to scratch; each verdict is made at its own {ALPHA:g} level, without correction across the "
            f"{len(arms)} arms. Whether one arm beats another is the paired comparison below (the same seeds and test "
            "examples, the verdict's statistic, Holm-adjusted over the pairs), not the order of the ranking.")


def sweep_headline(best: dict, helped: int, arms: int, setting: str, gap: str) -> str:
    """The banner's sentence for a sweep: how many arms helped and the best arm's gap (``gap`` already in words)."""
    name = SWEPT_SETTINGS.get(setting, setting)
    verdict = {"positive": "helped", "negative": "hurt", "inconclusive": "cannot be told apart from scratch"}.get(best["verdict"], "")
    return (f"Sweep over the {name}: transfer helped in {helped} of {arms} arms against one shared scratch arm; "
            f"the best, {best['arm']}, {verdict}: {gap}.")


def catch_up_sentence(catch_up: dict | None) -> str | None:
    """The banner's line for ``--scratch-epochs auto``: the scratch budgets tried and at which, if any, scratch caught up
    (TOST: the gap's 90% interval inside +-margin), else "not shown to catch up" with the gap at the largest budget."""
    rows = [r for r in (catch_up or {}).get("budgets") or [] if isinstance(r, dict)]
    if not rows:
        return None
    epochs = [(r.get("budget") or {}).get("epochs") for r in rows]
    budgets = ", ".join(f"{r.get('multiple')}x ({fmt.num(n)} epoch{'' if n == 1 else 's'})" for r, n in zip(rows, epochs))
    margin, level = fmt.num(100 * (catch_up.get("margin") or 0)), fmt.num(100 * (catch_up.get("tost_level") or 0))
    test = f"equivalence within ±{margin} points: the gap's {level}% interval inside the margin (TOST)"
    first = next((r for r in rows if r.get("arm") == catch_up.get("caught_up_at")), None)
    if first is not None:
        return (f"Catch-up sweep, scratch at {budgets}: scratch caught up at {first.get('multiple')}x the budget "
                f"(gap {fmt.points(first.get('gap'))} points, {level}% interval {fmt.ci_points(first.get('tost_interval'))}; {test}).")
    last = rows[-1]
    return (f"Catch-up sweep, scratch at {budgets}: scratch was not shown to catch up; at {last.get('multiple')}x the gap is "
            f"{fmt.points(last.get('gap'))} points ({level}% interval {fmt.ci_points(last.get('tost_interval'))}; {test}).")
