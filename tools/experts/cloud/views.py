"""Where per-point results land in pictures: the rendered view the model sees, and an organised scan's sensor grid.

The heatmap and the region boxes use the same camera and z-buffer as the shaded view, so a box
covers what the view shows at that place. For an organised scan (MVTec 3D-AD xyz TIFF), each
point is a cell of the sensor grid; the per-point scores become a per-cell map there, the frame
of the ground-truth masks. Boxes on a rendered view are never compared with sensor-grid masks.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from tools.inputs.prepared import PreparedCloud
from tools.render.camera import Camera
from tools.render.cloud import seen_points

GRID_REACH_SPACINGS = 3.0  # a grid point takes the score of the nearest prepared point within this many spacings


@dataclass
class ScanView:
    """A prepared scan with the camera of its rendered view and, for an organised scan, its grid."""

    cloud: PreparedCloud
    camera: Camera  # sized like the rendered view
    all_points: np.ndarray | None = None  # every point of the scan (the artifact's payload)
    valid: np.ndarray | None = None  # H x W bool: which grid cells hold those points, row-major

    extra_points: np.ndarray | None = None  # points drawn with the scan (reference surface it lacks), numbered after it

    @cached_property
    def seen(self) -> np.ndarray:
        """H x W index of the point seen at each pixel of the view (the scan's, then extra_points; -1: none)."""
        return seen_points(self.cloud, self.camera, self.extra_points)

    def heatmap(self, scores: np.ndarray, extra_scores: np.ndarray | None = None) -> np.ndarray:
        """H x W 0..1 in the view's pixels: the score of the surface seen at each pixel."""
        every = np.concatenate([scores, extra_scores if extra_scores is not None else
                                np.zeros(0 if self.extra_points is None else len(self.extra_points))]).astype(np.float32)
        return np.where(self.seen >= 0, every[np.maximum(self.seen, 0)], 0.0).astype(np.float32)

    def grid_map(self, scores: np.ndarray, extra: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray | None:
        """H x W 0..1 over the sensor grid, NaN in cells without a point (organised scans only, else None).

        extra (points, scores) not in the scan, such as reference surface it lacks, lands in the cells
        a pinhole sensor would see it in, when the grid is one.
        """
        if self.valid is None or self.all_points is None:
            return None
        grid = np.full(self.valid.shape, np.nan, np.float32)
        grid[self.valid] = self._carried(scores)
        if extra is not None and len(extra[0]) and self.pinhole is not None:
            rows, cols, inside = self._cells_of(extra[0])
            np.fmax.at(grid, (rows[inside], cols[inside]), extra[1][inside].astype(np.float32))
        return grid

    def grid_box(self, points: np.ndarray, rows: np.ndarray | None) -> tuple[float, float, float, float] | None:
        """The box (0..1 of the grid's width and height) that holds these points, or None."""
        if self.valid is None or self.all_points is None:
            return None
        if rows is not None:
            cells = self.cells[self.cloud.index[rows]]
            cell_rows, cell_cols = cells[:, 0], cells[:, 1]
        elif self.pinhole is not None:
            cell_rows, cell_cols, inside = self._cells_of(points)
            cell_rows, cell_cols = cell_rows[inside], cell_cols[inside]
        else:
            return None
        if not len(cell_rows):
            return None
        height, width = self.valid.shape
        return (cell_cols.min() / width, cell_rows.min() / height, (cell_cols.max() + 1) / width,
                (cell_rows.max() + 1) / height)

    @cached_property
    def cells(self) -> np.ndarray:
        """(row, column) of the grid cell of every scan point."""
        return np.argwhere(self.valid)

    @cached_property
    def pinhole(self) -> tuple[float, float, float, float] | None:
        """(fx, cx, fy, cy) when the grid is a pinhole sensor's image of its points (as in MVTec 3D-AD), else None."""
        points, cells = self.all_points, self.cells
        near = points[:, 2] > 1e-9
        if near.sum() < 10:
            return None
        fitted = []
        for axis, cell_axis in ((0, 1), (1, 0)):
            ratio = points[near, axis] / points[near, 2]
            design = np.c_[ratio, np.ones_like(ratio)]
            solution, *_ = np.linalg.lstsq(design, cells[near, cell_axis] + 0.5, rcond=None)
            residual = np.sqrt(np.mean((design @ solution - cells[near, cell_axis] - 0.5) ** 2))
            if residual > 0.75:
                return None
            fitted += [float(solution[0]), float(solution[1])]
        return tuple(fitted)

    def _cells_of(self, points: np.ndarray):
        fx, cx, fy, cy = self.pinhole
        z = np.where(points[:, 2] > 1e-9, points[:, 2], np.nan)
        cols = np.floor(points[:, 0] / z * fx + cx)
        rows = np.floor(points[:, 1] / z * fy + cy)
        height, width = self.valid.shape
        inside = np.isfinite(cols) & np.isfinite(rows) & (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
        return np.nan_to_num(rows).astype(np.int64), np.nan_to_num(cols).astype(np.int64), inside

    def _carried(self, scores: np.ndarray) -> np.ndarray:
        """Scores for every scan point: its own when it was kept, else the nearest kept point's when near."""
        from scipy.spatial import cKDTree

        from tools.inputs.prepared import typical_spacing

        distance, nearest = cKDTree(self.cloud.points).query(self.all_points, k=1)
        reach = GRID_REACH_SPACINGS * typical_spacing(self.cloud.points)
        carried = np.where(distance <= reach, scores[nearest], 0.0).astype(np.float32)
        carried[self.cloud.index] = scores
        return carried


def region_box(scan: ScanView, points: np.ndarray, seen_rows: np.ndarray, grid_rows: np.ndarray | None):
    """(box in the view, share of the view's pixels, box in the sensor grid or None) of a region's points.

    seen_rows: the region's numbers in the view's z-buffer (ScanView.seen); grid_rows: its rows in the
    prepared scan (None for points that are not part of the scan, such as reference surface it lacks).
    """
    seen = np.isin(scan.seen, seen_rows)
    height, width = seen.shape
    if seen.any():
        found_rows, found_cols = np.nonzero(seen)
        box = (found_cols.min() / width, found_rows.min() / height, (found_cols.max() + 1) / width,
               (found_rows.max() + 1) / height)
    else:  # on the far side in this view: where it would be, clipped to the picture
        cols, image_rows, _ = scan.camera.project(points)
        box = tuple(float(np.clip(v, 0, 1)) for v in (cols.min() / width, image_rows.min() / height,
                                                       cols.max() / width, image_rows.max() / height))
    return tuple(float(v) for v in box), float(seen.mean()), scan.grid_box(points, grid_rows)
