"""The vision expert: few-shot patch comparison of a query picture with reference normals
(`expert.compare`), with its feature extractors, matching, calibration, regions and cache."""
