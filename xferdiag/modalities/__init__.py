"""Modalities as plug-ins: each owns one kind of data (image, table, text): its descriptor, its rule for
over-long inputs, what data.json records of its splits, extra baselines, its model side (a dummy input, the
transfer-model class), its explanations and its per-input shift; a domain's payload (:class:`xferdiag.data.Payload`)
makes its dataset and describes it; each plug-in package holds its loader (``load.py``). The registry is
:mod:`.registry`, which plug-in a data spec is :mod:`.loading`, the model side :mod:`.models`, the light
vocabulary and descriptors :mod:`.kinds` and :mod:`.descriptor`. This package imports nothing, so a torch-free
reader (the report, the command line) can import the descriptors without loading the models."""
