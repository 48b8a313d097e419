"""Tasks as plug-ins: what is predicted, how it is trained, scored and judged (classification, detection).
The registry is :mod:`.registry`; this package imports nothing, so a torch-free reader (the report) can
import a plug-in's light modules (its descriptor) without loading the models."""
