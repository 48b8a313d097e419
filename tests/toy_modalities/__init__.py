"""Modality plug-ins that live in the tests: each fits the modality seam with its own files and one registration line."""
