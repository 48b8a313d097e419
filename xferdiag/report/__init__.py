"""Offline HTML reports: one run (:func:`render_report`) or several side by side (:func:`render_compare`)."""

from .compare import compare_table, render_compare
from .html import Report, render_report

__all__ = ["Report", "compare_table", "render_compare", "render_report"]
