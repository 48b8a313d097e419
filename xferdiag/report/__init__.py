"""Offline HTML reports: one run (:func:`render_report`) or several side by side (:func:`render_compare`).

The comparison's statistics need ``scipy.stats`` (half a second to import), which one run's report
does without: :mod:`.compare` loads when one of its names is first asked for.
"""

from .html import Report, render_report

__all__ = ["Report", "compare_table", "render_compare", "render_report"]


def __getattr__(name: str):
    if name == "compare_table":
        from .compare import compare_table

        return compare_table
    if name == "render_compare":
        from .compare import render_compare

        return render_compare
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
