"""A point cloud made ready for rendering and for the 3-D expert: one preparation for both.

`prepare(points)` thins the cloud to at most `max_points` (voxel grid), removes statistical
outliers (open3d) and, when it dominates, the background plane (the table under a part, as in
MVTec 3D-AD), and remembers which input row each kept point came from, so that a per-point result
can be carried back to every input point (and so to the cells of an organised grid). Normals
(open3d, from the 20 nearest neighbours) and the local point spacing are computed on first use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

NORMAL_NEIGHBOURS = 20
NORMAL_SAMPLE = 30_000
PLANE_MIN_SHARE = 0.25  # the plane holds at least this share of the points ...
PART_MIN_SHARE = 0.03  # ... and something else (the part) at least this share,
PART_ONE_SIDE = 0.9  # lying on one side of it (a part rests on a table, it does not pierce it),
TABLE_OVERHANG = 1.6  # and the plane reaches well beyond the part (a table, not the part's own face),
TABLE_MARGIN = 0.05  # on at least three sides (a table surrounds the part; a part's face meets its other faces)


@dataclass
class PreparedCloud:
    """Points ready to render or compare, with the input row of each point and lazily computed geometry."""

    points: np.ndarray  # float32 (M, 3)
    index: np.ndarray  # int64 (M,): row of each point in the input cloud
    colours: np.ndarray | None = None  # uint8 (M, 3) when the input had colours
    background: np.ndarray | None = field(default=None, repr=False)  # the removed plane (a, b, c, d), if any

    @cached_property
    def normals(self) -> np.ndarray:
        """Unit normals (float32 (M, 3)) from the nearest neighbours, oriented away from the cloud's centre.

        A large cloud gets them from a thinned copy (NORMAL_SAMPLE points), each point taking its
        nearest sample's: a quarter of the time, and smoother, with shape detail down to a few spacings.
        """
        if len(self.points) <= NORMAL_SAMPLE:
            return estimate_normals(self.points)
        from scipy.spatial import cKDTree

        sample = self.points[voxel_downsample(self.points, NORMAL_SAMPLE)]
        _, nearest = cKDTree(sample).query(self.points, k=1)
        return estimate_normals(sample)[nearest]

    @cached_property
    def spacing(self) -> np.ndarray:
        """Local point spacing (float32 (M,)), from the local density (see local_spacing)."""
        return local_spacing(self.points)

    @cached_property
    def size(self) -> float:
        """The cloud's size: the diagonal of its robust (0.5-99.5 %) bounding box."""
        low, high = np.percentile(self.points, [0.5, 99.5], axis=0)
        return float(np.linalg.norm(high - low)) or 1.0


def prepare(points: np.ndarray, *, colours: np.ndarray | None = None, max_points: int = 100_000,
            remove_outliers: bool = True, background: str = "auto", seed: int = 0) -> PreparedCloud:
    """Thin, clean and (background="auto": when it dominates; "remove": always; "keep": never) drop the table."""
    points = np.asarray(points, np.float32)
    index = voxel_downsample(points, max_points, seed)
    if len(index) >= 20 and background != "keep":
        index, plane = _without_background(points, index, always=background == "remove", seed=seed)
    else:
        plane = None
    if len(index) >= 20 and remove_outliers:
        index = index[_inliers(points[index])]
    return PreparedCloud(np.ascontiguousarray(points[index]), index,
                         None if colours is None else np.ascontiguousarray(colours[index]), plane)


def sensor_at_origin(points: np.ndarray) -> bool:
    """Whether the points look like a scan in its sensor's coordinates: in front of the origin, along +z, far off.

    MVTec 3D-AD grids and most depth cameras store points so; a reconstructed or world-frame scan
    lies anywhere and is not mistaken for one.
    """
    centre = np.asarray(points, np.float64).mean(axis=0)
    radius = float(np.linalg.norm(points - centre, axis=1).max())
    distance = float(np.linalg.norm(centre))
    return distance > 2 * radius and centre[2] > 0.8 * distance


def voxel_downsample(points: np.ndarray, max_points: int, seed: int = 0) -> np.ndarray:
    """Rows of at most max_points points: one per cell of a voxel grid sized for that count, then random if needed."""
    rows = np.arange(len(points))
    if len(points) <= max_points:
        return rows
    rng = np.random.default_rng(seed)
    if len(points) > 2 * max_points:  # thin at random first: the voxel pass then sorts far fewer keys
        rows = rows[rng.random(len(points)) < 2 * max_points / len(points)]
    columns = np.ascontiguousarray(points[rows].T)  # reductions along contiguous rows are several times faster
    low, high = columns.min(axis=1), columns.max(axis=1)
    extent = np.sort(high - low)[::-1]
    voxel = np.sqrt(max(float(extent[0] * extent[1]), 1e-18) / max_points)  # a surface fills ~ area / voxel^2
    cells = ((columns - low[:, None]) / voxel).astype(np.int64)
    dims = (high - low) / voxel + 1
    keys = (cells[0] * int(dims[1]) + cells[1]) * int(dims[2]) + cells[2]
    _, first = np.unique(keys, return_index=True)
    kept = rows[np.sort(first)]
    if len(kept) > max_points:
        kept = kept[np.sort(rng.choice(len(kept), max_points, replace=False))]
    return kept


def open3d_cloud(points: np.ndarray, normals: np.ndarray | None = None):
    """An open3d PointCloud of these points (and normals)."""
    import open3d as o3d

    o3d.utility.set_verbosity_level(o3d.utility.VerbosityLevel.Error)
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points, np.float64)))
    if normals is not None:
        cloud.normals = o3d.utility.Vector3dVector(np.asarray(normals, np.float64))
    return cloud


def estimate_normals(points: np.ndarray, neighbours: int = NORMAL_NEIGHBOURS) -> np.ndarray:
    """Unit normals from the nearest neighbours' plane (open3d), oriented away from the centre of the cloud."""
    import open3d as o3d

    if len(points) < 3:
        return np.tile(np.float32([0, 0, 1]), (len(points), 1))
    cloud = open3d_cloud(points)
    cloud.estimate_normals(o3d.geometry.KDTreeSearchParamKNN(min(neighbours, len(points) - 1)))
    normals = np.asarray(cloud.normals, np.float32)
    outward = np.einsum("ij,ij->i", normals, points - points.mean(axis=0)) < 0
    normals[outward] *= -1
    return normals


def local_spacing(points: np.ndarray) -> np.ndarray:
    """Local point spacing, from how many points share each point's voxel cell (a cell 4 spacings wide).

    On a surface, n points in a cell of side c are about c / sqrt(n) apart; the denser of two
    staggered grids counts (a cell the surface only grazes holds few points). O(N), no neighbour search.
    """
    typical = typical_spacing(points)
    if len(points) < 8:
        return np.full(len(points), typical, np.float32)
    cell = 2.0 ** (np.round(np.log2(4 * typical) * 4) / 4)  # snapped, so a small change elsewhere leaves the grid as it is
    best = np.full(len(points), np.inf)
    for shift in (0.0, 0.5):
        coordinates = np.floor(points / cell + shift).astype(np.int64)
        coordinates -= coordinates.min(axis=0)
        dims = coordinates.max(axis=0) + 1
        keys = (coordinates[:, 0] * dims[1] + coordinates[:, 1]) * dims[2] + coordinates[:, 2]
        _, cells, counts = np.unique(keys, return_inverse=True, return_counts=True)
        best = np.minimum(best, cell / np.sqrt(counts[cells.ravel()]))
    return np.clip(best, 0.5 * typical, 3 * typical).astype(np.float32)


def typical_spacing(points: np.ndarray, sample: int = 2000, seed: int = 0) -> float:
    """The median distance from a point to its nearest neighbour, from a sample of the points."""
    from scipy.spatial import cKDTree

    if len(points) < 2:
        return 1.0
    rows = np.random.default_rng(seed).choice(len(points), min(sample, len(points)), replace=False)
    distances, _ = cKDTree(points).query(points[rows], k=2)
    return float(np.median(distances[:, 1])) or 1e-9


def _inliers(points: np.ndarray) -> np.ndarray:
    """Rows that are not statistical outliers (8 neighbours, 3 sigma)."""
    _, kept = open3d_cloud(points).remove_statistical_outlier(nb_neighbors=8, std_ratio=3.0)
    return np.asarray(kept, np.int64)


def _without_background(points: np.ndarray, index: np.ndarray, *, always: bool, seed: int):
    """The rows off the dominant plane when that plane is a table under a part (or always), and the plane."""
    import open3d as o3d

    chosen = points[index]
    sample = chosen[np.random.default_rng(seed).permutation(len(chosen))[:20_000]]
    o3d.utility.random.seed(seed)
    threshold = 0.01 * float(np.linalg.norm(np.ptp(chosen, axis=0)))
    plane, _ = open3d_cloud(sample).segment_plane(threshold, 3, 200)
    plane = np.asarray(plane, np.float64)
    signed = chosen @ plane[:3] + plane[3]
    on_plane = np.abs(signed) < threshold
    if not (always or _is_table(chosen, signed, on_plane, plane[:3])) or (~on_plane).sum() < 20:
        return index, None
    return index[~on_plane], plane


def _is_table(points: np.ndarray, signed: np.ndarray, on_plane: np.ndarray, normal: np.ndarray) -> bool:
    """Whether the plane is a table the part rests on, not one of the part's own faces (see the constants)."""
    off = ~on_plane
    if on_plane.mean() < PLANE_MIN_SHARE or off.mean() < PART_MIN_SHARE:
        return False
    side = np.sign(np.median(signed[off]))
    if (np.sign(signed[off]) == side).mean() < PART_ONE_SIDE:
        return False
    (table_low, table_high), (part_low, part_high) = (_extent_on(points[rows], normal) for rows in (on_plane, off))
    margin = TABLE_MARGIN * (table_high - table_low)
    sides = np.r_[part_low - table_low > margin, table_high - part_high > margin]
    return bool(sides.sum() >= 3 and np.prod(table_high - table_low) > TABLE_OVERHANG * np.prod(part_high - part_low))


def _extent_on(points: np.ndarray, normal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The robust (1-99 %) box of the points projected on the plane, in two in-plane coordinates."""
    helper = np.array([1.0, 0, 0]) if abs(normal[0]) < 0.9 else np.array([0, 1.0, 0])
    u = np.cross(normal, helper)
    u /= np.linalg.norm(u)
    flat = points @ np.stack([u, np.cross(normal, u)], axis=1)
    low, high = np.percentile(flat, [1, 99], axis=0)
    return low, high
