"""The image modality's plug-in (:mod:`.plugin`) and its torch-free descriptor (:mod:`.descriptor`)."""
