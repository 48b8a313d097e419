"""Tasks as plug-ins: what is predicted, how it is trained and scored (classification first)."""
