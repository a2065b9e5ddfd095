"""Inputs: `artifacts.load()` turns an uploaded file into a typed Artifact (image, point cloud,
series, video); one loader module per modality, limits checked before reading."""
