"""``verdict``: the paired transfer-vs-scratch verdict of a run directory (verdict.json)."""

from ..negative import verdict_for_run

__all__ = ["verdict_for_run"]
