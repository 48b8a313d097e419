"""Plug-ins that live in the tests: each fits a seam of xferdiag with its own files and one registration line."""
