"""Aligning a scan to a reference surface: global registration on FPFH features, then point-to-plane ICP.

Starting poses are tried cheapest first: the scan's own pose (parts scanned on a station are
often aligned already), the four ways of laying the scan's principal axes onto the reference's,
then the global step (open3d: RANSAC over FPFH feature matches, twice, since a part that looks
symmetric can fool one run), which finds the pose from any start. Each start is refined by ICP on
the coarse points until one fits nearly everywhere; the best is refined on a finer sampling. The
residual (RMS point-to-plane distance of the matched points) and the fitness (share of the scan's
points that found the reference surface) say how well the scan fits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tools.inputs.prepared import open3d_cloud

COARSE_CELLS = 40  # the global step works on a voxel grid of size / COARSE_CELLS (a few thousand points)
FINE_CELLS = 120  # ICP works on a voxel grid of size / FINE_CELLS
RANSAC_ITERATIONS = 8_000
RANSAC_CONFIDENCE = 0.999
ICP_ITERATIONS = (20, 10)  # wide, then narrow matching distance
SURE_FITNESS = 0.98
AS_SCANNED_FITNESS = 0.5  # ICP also starts from the scan's own pose when this share already matches there


@dataclass
class Alignment:
    """A rigid transform from the scan into the reference frame, and how well it fits."""

    transform: np.ndarray  # 4 x 4
    fitness: float  # share of scan points within the matching distance of the reference surface
    residual: float  # RMS point-to-plane distance of those points (same units as the points)
    start: str  # "global" (from the FPFH match) or "as scanned" (from the scan's own pose)

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Points moved into the reference frame."""
        return (np.asarray(points, np.float64) @ self.transform[:3, :3].T + self.transform[:3, 3]).astype(np.float32)

    def inverse(self, points: np.ndarray) -> np.ndarray:
        """Reference-frame points moved into the scan's frame."""
        rotation, shift = self.transform[:3, :3], self.transform[:3, 3]
        return ((np.asarray(points, np.float64) - shift) @ rotation).astype(np.float32)


@dataclass
class Target:
    """A reference surface prepared for registration: coarse points with FPFH features, fine points with normals."""

    coarse: object  # open3d PointCloud
    features: object  # open3d Feature
    fine: object  # open3d PointCloud with normals
    voxel: float  # the coarse voxel size


def voxel_sizes(size: float) -> tuple[float, float]:
    """(coarse, fine) voxel sizes for an object of this size."""
    return size / COARSE_CELLS, size / FINE_CELLS


def features(points: np.ndarray, voxel: float):
    """(coarse cloud with normals, FPFH features) of points on a voxel grid."""
    import open3d as o3d

    coarse = open3d_cloud(points).voxel_down_sample(voxel)
    coarse.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=2.5 * voxel, max_nn=30))
    fpfh = o3d.pipelines.registration.compute_fpfh_feature(
        coarse, o3d.geometry.KDTreeSearchParamHybrid(radius=5 * voxel, max_nn=100))
    return coarse, fpfh


def make_target(points: np.ndarray, normals: np.ndarray, size: float) -> Target:
    """The registration target of a reference surface (points with oriented normals)."""
    coarse_voxel, fine_voxel = voxel_sizes(size)
    coarse, fpfh = features(points, coarse_voxel)
    fine = open3d_cloud(points, normals).voxel_down_sample(fine_voxel)
    return Target(coarse, fpfh, fine, coarse_voxel)


def register(points: np.ndarray, target: Target, *, seed: int = 0) -> Alignment:
    """The best alignment of the scan's points to the target (see the module docstring)."""
    coarse, fpfh = features(points, target.voxel)
    best, best_start = None, ""
    for transform, start in _starts(coarse, fpfh, target, seed):
        found = _refine(coarse, target, transform, coarse=True)
        if best is None or (round(found.fitness, 3), -found.inlier_rmse) > (round(best.fitness, 3), -best.inlier_rmse):
            best, best_start = found, start
        if best.fitness >= SURE_FITNESS:
            break  # nearly every point found the surface: no other start can do much better
    fine = open3d_cloud(points).voxel_down_sample(target.voxel * COARSE_CELLS / FINE_CELLS)
    result = _refine(fine, target, best.transformation)
    return Alignment(np.asarray(result.transformation), float(result.fitness), float(result.inlier_rmse), best_start)


def _starts(coarse, fpfh, target: Target, seed: int):
    """Starting poses, cheapest first: as scanned (when plausible), principal axes, RANSAC twice."""
    import open3d as o3d

    if _registration().evaluate_registration(coarse, target.coarse, 1.5 * target.voxel, np.eye(4)).fitness >= AS_SCANNED_FITNESS:
        yield np.eye(4), "as scanned"
    for turn in _axis_matches(np.asarray(coarse.points), np.asarray(target.coarse.points)):
        yield turn, "principal axes"
    for attempt in range(2):  # a part that looks symmetric can fool one RANSAC run
        o3d.utility.random.seed(seed + attempt)
        yield _global(coarse, fpfh, target).transformation, "global"


def _axis_matches(source: np.ndarray, target: np.ndarray) -> list[np.ndarray]:
    """The four proper rotations that put the source's principal axes on the target's, about their centres."""
    frames = []
    for points in (source, target):
        _, vectors = np.linalg.eigh(np.cov((points - points.mean(axis=0)).T))
        frames.append(vectors[:, ::-1])  # largest spread first
    turns = []
    for signs in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
        mine = frames[0] * np.array([signs[0], signs[1], 1.0])
        mine[:, 2] = np.cross(mine[:, 0], mine[:, 1])
        theirs = frames[1].copy()
        theirs[:, 2] = np.cross(theirs[:, 0], theirs[:, 1])
        transform = np.eye(4)
        transform[:3, :3] = theirs @ mine.T
        transform[:3, 3] = target.mean(axis=0) - transform[:3, :3] @ source.mean(axis=0)
        turns.append(transform)
    return turns


def _global(coarse, fpfh, target: Target):
    registration = _registration()
    distance = 1.5 * target.voxel
    return registration.registration_ransac_based_on_feature_matching(
        coarse, target.coarse, fpfh, target.features, True, distance,
        registration.TransformationEstimationPointToPoint(False), 3,
        [registration.CorrespondenceCheckerBasedOnEdgeLength(0.9),
         registration.CorrespondenceCheckerBasedOnDistance(distance)],
        registration.RANSACConvergenceCriteria(RANSAC_ITERATIONS, RANSAC_CONFIDENCE))


def _refine(source, target: Target, start: np.ndarray, *, coarse: bool = False):
    """ICP, first with a wide then with a narrow matching distance.

    On the coarse clouds it matches point to point (point-to-plane lets a mostly flat part slide
    along its face from a rough start); on the fine clouds point to plane, which converges closer.
    """
    registration = _registration()
    result, goal = None, target.coarse if coarse else target.fine
    distances = (2.0 * target.voxel, 1.0 * target.voxel) if coarse else (1.0 * target.voxel, 0.35 * target.voxel)
    for distance, iterations in zip(distances, ICP_ITERATIONS, strict=True):
        result = registration.registration_icp(
            source, goal, distance, start if result is None else result.transformation,
            registration.TransformationEstimationPointToPoint() if coarse else registration.TransformationEstimationPointToPlane(),
            registration.ICPConvergenceCriteria(relative_fitness=1e-6, relative_rmse=1e-6, max_iteration=iterations))
    return result


def _registration():
    import open3d as o3d

    return o3d.pipelines.registration
