"""What the image, table and text explanation sections share: the gallery's size,
how far two arms' explanations agree, and what to do about a corrupt explanations/ folder."""

from __future__ import annotations

from ...rundir.documents import Agreement, Verdict
from .. import fmt
from .common import mean

MAX_GALLERY = 24  # examples shown per explanation gallery
RERUN = "delete explanations/ and rerun 'xferdiag explain'"


def agreement_means(agreement: dict[str, Agreement]) -> list[dict]:
    """Per method, the mean over examples of the rank correlation and the top-k overlap."""
    return [{"method": fmt.display_name(m), "spearman": mean(a.get("spearman") or []), "topk": mean(a.get("topk_overlap") or [])}
            for m, a in agreement.items()]


def with_agreement_caveat(section: dict, verdict: Verdict | None) -> dict:
    """Agreement between a model that learned and one that did not measures nothing about transfer: say so."""
    dead = [w.get("arm") for w in (verdict or {}).get("warnings") or [] if w.get("code", "").endswith("did-not-learn")]
    compared = [a for a in section.get("arms", [])[:2] if a in dead]
    section["agreement_caveat"] = (f"Not meaningful here: the {' and '.join(compared)} model{'s' if len(compared) > 1 else ''} "
                                   f"did not learn (see the verdict), so agreement with {'them' if len(compared) > 1 else 'it'} says "
                                   "nothing about what transfer changed.") if compared and section.get("agreement") else None
    return section
