"""The command layer: one module per CLI verb, the glue between computation and the run directory."""
