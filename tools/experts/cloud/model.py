"""The reference model of a class: its reference scans aligned into one surface, with thresholds from the references alone.

Every reference scan is registered to the largest one and the union, thinned on a voxel grid,
becomes the reference surface (normals from 20 neighbours, made consistent). Calibration needs no
defective sample: each reference is registered to the surface of the others and measured exactly
like a query (leave-one-out), with the support a query's score needs (regions.supported: a
deviation counts only as much as its DBSCAN neighbours agree). How far the references deviate
from each other is kept per place on the surface (the largest leave-one-out deviation within a few millimetres), because normal
variation is not the same everywhere: a steep wall that one scan sees and another does not varies
far more than a flat top. A point's threshold is a margin above that, and never below a
surface-wide threshold extrapolated from the tail of all leave-one-out deviations (tail_threshold),
separately for "deviates from the surface" and "lacks surface". With a single reference its
two random halves are compared instead; two samplings of one scan agree better than two scans
do, so that margin is wider.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tools.experts.cloud.deviation import PointDeviation, Surface, cell_max, deviation, missing
from tools.experts.cloud.registration import Alignment, Target, make_target, register
from tools.inputs.prepared import (
    PreparedCloud,
    estimate_normals,
    local_spacing,
    open3d_cloud,
    sensor_at_origin,
    typical_spacing,
    voxel_downsample,
)

MAX_SURFACE_POINTS = 150_000
LEAVE_ONE_OUT_MARGIN = 2.0
HALVES_MARGIN = 3.0
ALARM_RATE = 0.0005  # expected places per normal scan above the surface-wide threshold (tail extrapolation)
TAIL_START = 0.98  # the tail of the leave-one-out deviations starts at this quantile
STRUCTURAL = 20.0  # a place varying this many times the sampling error varies for a reason; it keeps its own threshold
LOCAL_REACH = 0.08  # normal variation is pooled over cells of this share of the object's size
ORIENT_SAMPLE = 8000  # normals are made consistent on this many points, then carried to the rest


@dataclass
class Measurement:
    """One scan measured against a reference surface."""

    alignment: Alignment
    aligned: np.ndarray  # the scan's points in the reference frame
    points: PointDeviation  # of the scan's points
    lacking: np.ndarray  # per surface point: how far the scan is beyond the sampling gap


@dataclass
class ReferenceModel:
    """The aligned reference surface of a class with its calibrated thresholds per surface point."""

    surface: Surface
    size: float
    thresholds: np.ndarray  # float32 (M, 2): (deviation, lack of surface) per surface point, scan units
    normal_scores: dict = field(default_factory=dict)  # how the thresholds came about
    alignments: list[dict] = field(default_factory=list)  # how well each reference fitted the first
    count: int = 1
    variation: np.ndarray | None = field(default=None, repr=False)  # (M, 2) leave-one-out deviation and lack
    _target: Target | None = field(default=None, repr=False)

    @property
    def target(self) -> Target:
        if self._target is None:
            self._target = make_target(self.surface.points, self.surface.normals, self.size)
        return self._target

    def measure(self, cloud: PreparedCloud, seed: int = 0) -> Measurement:
        """Align a prepared scan to the surface and measure its deviation both ways."""
        return measure(cloud.points, self.surface, self.target, seed)


def measure(points: np.ndarray, surface: Surface, target: Target, seed: int = 0) -> Measurement:
    """Register points to a surface, then the deviation of each point and the surface each point lacks."""
    alignment = register(points, target, seed=seed)
    aligned = alignment.apply(points)
    spacing, local = typical_spacing(aligned), local_spacing(aligned)
    return Measurement(alignment, aligned, deviation(aligned, surface, spacing, local),
                       missing(surface, aligned, spacing, local))


def fit(clouds: list[PreparedCloud], seed: int = 0) -> ReferenceModel:
    """The reference model of these prepared reference scans (at least one)."""
    anchor = int(np.argmax([len(c.points) for c in clouds]))
    size = float(np.median([c.size for c in clouds]))
    first = _surface_of([clouds[anchor].points], [anchor])
    placed, alignments = [], []
    for i, cloud in enumerate(clouds):
        if i == anchor:
            placed.append(cloud.points)
            continue
        alignment = register(cloud.points, make_target(first.points, first.normals, size), seed=seed)
        placed.append(alignment.apply(cloud.points))
        alignments.append({"reference": i, "fitness": round(alignment.fitness, 4)})
    surface = _surface_of(placed, list(range(len(clouds))))
    model = ReferenceModel(surface, size, np.zeros((len(surface.points), 2), np.float32), alignments=alignments,
                           count=len(clouds))
    model.variation = _leave_one_out(model, placed, seed) if len(clouds) > 1 else _halves(model, placed[0], seed)
    margin = LEAVE_ONE_OUT_MARGIN if len(clouds) > 1 else HALVES_MARGIN
    model.thresholds, model.normal_scores = thresholds(surface, size, model.variation, margin)
    model.normal_scores["method"] = "leave-one-out" if len(clouds) > 1 else "two halves of one scan"
    return model


def thresholds(surface: Surface, size: float, variation: np.ndarray, margin: float, *, alarm: float | None = None,
               reach: float | None = None) -> tuple[np.ndarray, dict]:
    """Per surface point: the larger of the surface-wide tail threshold and margin x the normal variation around it."""
    alarm, reach = alarm or ALARM_RATE, reach or LOCAL_REACH
    local = np.stack([cell_max(surface.points, variation[:, k], reach * size) for k in range(2)], axis=1)
    sampling = 2 * surface.spacing / np.sqrt(20)  # noise-free references still leave sampling error
    ordinary = local <= STRUCTURAL * sampling  # places that vary for a reason (a wall one view sees) set their own
    floor = np.array([max(tail_threshold(variation[ordinary[:, k], k], alarm), sampling) for k in range(2)])
    limits = np.maximum(floor, margin * local).astype(np.float32)
    summary = {"margin": margin, "alarm_rate": alarm, "surface_wide": [float(v) for v in floor],
               "largest_normal": [float(v) for v in variation.max(axis=0)]}
    return limits, summary


def tail_threshold(values: np.ndarray, alarm: float) -> float:
    """The value a normal scan's largest deviation exceeds with probability about `alarm` (peaks over threshold).

    The leave-one-out deviations above their 98th percentile are taken as exponentially distributed
    (the tail of a maximum of many noisy cells), with the scale from the median excess (a few
    extreme places do not set it); the threshold extrapolates that tail to one exceedance in
    1/alarm scans. Four references show only four largest values; the tail of all their points
    says more about a fifth.
    """
    values = np.asarray(values, np.float64)
    if len(values) == 0:
        return 0.0
    start = float(np.quantile(values, TAIL_START))
    excess = values[values > start] - start
    if len(excess) < 5:
        return float(values.max(initial=0.0))
    scale = float(np.median(excess)) / np.log(2)  # the median of an exponential distribution is scale x ln 2
    return start + scale * float(np.log(len(excess) / alarm))


def _surface_of(clouds: list[np.ndarray], owners: list[int]) -> Surface:
    points = np.vstack(clouds).astype(np.float32)
    owner = np.concatenate([np.full(len(c), o, np.int32) for c, o in zip(clouds, owners, strict=True)])
    rows = voxel_downsample(points, MAX_SURFACE_POINTS)
    points, owner = points[rows], owner[rows]
    return Surface(points, oriented_normals(points), owner, typical_spacing(points))


def oriented_normals(points: np.ndarray) -> np.ndarray:
    """Normals made consistent across the surface (open3d, on a sample), then turned outwards (see _outwards)."""
    from scipy.spatial import cKDTree

    normals = estimate_normals(points)
    sample = np.random.default_rng(0).permutation(len(points))[:ORIENT_SAMPLE]
    cloud = open3d_cloud(points[sample], normals[sample])
    try:
        cloud.orient_normals_consistent_tangent_plane(10)
    except RuntimeError:
        return normals  # too few points for the graph; the centre-based orientation stays
    oriented = np.asarray(cloud.normals, np.float32)
    oriented *= _outwards(points[sample], oriented)
    _, nearest = cKDTree(points[sample]).query(points, k=1)
    agree = np.einsum("ij,ij->i", normals, oriented[nearest]) >= 0
    return np.where(agree[:, None], normals, -normals).astype(np.float32)


def _outwards(points: np.ndarray, normals: np.ndarray) -> float:
    """+1 or -1: the sign that turns consistent normals to the outside.

    A scan in sensor coordinates (far from the origin, in front of it) faces the sensor at the
    origin. Any other view of one side (the normals agree on a direction) is taken to face +z, the
    way a scanner looks down on a table; a closed scan's normals point away from its centre.
    """
    centre = points.mean(axis=0)
    if sensor_at_origin(points):
        return 1.0 if np.einsum("ij,ij->i", normals, -points).mean() >= 0 else -1.0
    mean = normals.mean(axis=0)
    if np.linalg.norm(mean) > 0.3:
        return 1.0 if mean[2] >= 0 else -1.0
    return 1.0 if np.einsum("ij,ij->i", normals, points - centre).mean() >= 0 else -1.0


def _leave_one_out(model: ReferenceModel, placed: list[np.ndarray], seed: int) -> np.ndarray:
    """(M, 2): per surface point, the largest deviation and lack seen when each reference is a query to the others."""
    surface = model.surface
    variation = np.zeros((len(surface.points), 2))
    for i, points in enumerate(placed):
        others = np.flatnonzero(surface.owner != i)
        rest = Surface(surface.points[others], surface.normals[others], surface.owner[others], surface.spacing)
        shifted = _moved(points, seed + i, model.size)  # start from another pose, as a new scan would
        found = measure(shifted, rest, make_target(rest.points, rest.normals, model.size), seed)
        _, where = surface.tree.query(found.aligned, k=1)
        deviating, lacking = _supported(found, rest.points, surface.spacing)
        np.maximum.at(variation[:, 0], where, deviating)
        np.maximum.at(variation[:, 1], others, lacking)
    return variation


def _halves(model: ReferenceModel, points: np.ndarray, seed: int) -> np.ndarray:
    """One reference: its two random halves, each measured against a surface made of the other."""
    surface = model.surface
    half = np.random.default_rng(seed).random(len(points)) < 0.5
    variation = np.zeros((len(surface.points), 2))
    for part in (half, ~half):
        other = points[~part]
        rest = Surface(other, oriented_normals(other), np.zeros(len(other), np.int32), typical_spacing(other))
        found = measure(points[part], rest, make_target(rest.points, rest.normals, model.size), seed)
        _, where = surface.tree.query(found.aligned, k=1)
        deviating, lacking = _supported(found, rest.points, rest.spacing)
        np.maximum.at(variation[:, 0], where, deviating)
        _, lacking_at = surface.tree.query(rest.points, k=1)
        np.maximum.at(variation[:, 1], lacking_at, lacking)
    return variation


def _supported(found: Measurement, surface_points: np.ndarray, surface_spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """A leave-one-out measurement's deviations and lack, with the support a query's scores need (regions.supported):
    the threshold is calibrated on the statistic the score uses."""
    from tools.experts.cloud.regions import supported

    return (supported(found.aligned, found.points.magnitude, typical_spacing(found.aligned)),
            supported(surface_points, found.lacking, surface_spacing))


def _moved(points: np.ndarray, seed: int, size: float) -> np.ndarray:
    """The points turned by a few degrees and shifted a little (ICP must not start at the answer)."""
    rng = np.random.default_rng(seed)
    angle = np.radians(rng.uniform(2, 5))
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    turn = np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k
    centre = points.mean(axis=0)
    return ((points - centre) @ turn.T + centre + rng.uniform(-0.01, 0.01, 3) * size).astype(np.float32)
