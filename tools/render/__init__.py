"""Renderers: every modality becomes a 2-D picture (`views.to_image`); point clouds, series
plots, video frame grids, and the image operations (zoom, heatmap overlay, composites)."""
