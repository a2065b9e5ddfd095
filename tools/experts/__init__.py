"""Experts: numeric evidence beside the VLM. `vision/` compares a picture with reference
normals, `series` finds anomalous windows in sensor series, `descriptor` gives a global image
descriptor for choosing the nearest references and suggesting a class."""
