"""Modalities as plug-ins: each owns one kind of data (image, table, text): loading and describing it, the
dataset a model trains on, the model-input check, the rule for over-long inputs, extra baselines, its
explanations and its per-input shift. The registry is :mod:`.registry`; the light vocabulary and
descriptors are :mod:`.descriptor`. This package imports nothing, so a torch-free reader (the report, the
command line) can import the descriptors without loading the models."""
