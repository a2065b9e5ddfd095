"""Deviating regions of a scan: DBSCAN clusters of points beyond the threshold, in 3-D and in the rendered view.

A region knows its 3-D centre and extent (in the scan's own coordinates and units), what kind of
deviation it is (dent, bulge, extra material, missing surface), how deep, and where it appears in
the rendered view (a box in 0..1 image coordinates, in words); for an organised scan also its box
in the sensor grid, the frame the ground-truth masks of MVTec 3D-AD use. It also carries the
figures behind it: the deviation at its peak against the threshold there and the largest
deviation the reference scans show among themselves at the same place (leave-one-out), so a
follow-up can say how far the place is beyond normal variation. `hottest` gives the place that
differs most when nothing reaches the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tools.experts.cloud.views import ScanView, region_box
from tools.experts.vision.regions import MAX_REGIONS, Region, describe_place

CLUSTER_SPACINGS = 4.0  # DBSCAN neighbourhood, in point spacings
MIN_POINTS = 6
SUPPORT_POINTS = MIN_POINTS  # (not fewer: DBSCAN's core points) a place counts only as much as this many points around it (itself included) agree
SUPPORT_REACH = 0.99 * CLUSTER_SPACINGS  # within the DBSCAN neighbourhood (a little inside: no tie at its edge)
SUPPORT_SEARCHED = 32  # nearest points searched for that support
SCORE_FLOOR = 0.1  # a score below this is too low to matter: it is not searched for support (speed)


@dataclass(frozen=True)
class CloudRegion(Region):
    """A Region (box, area, peak, where in the rendered view) with its 3-D description."""

    kind: str = "deviation"  # dent | bulge | extra material | missing surface
    depth: float = 0.0  # signed peak deviation (scan units): - below / + above the reference surface
    centre: tuple[float, float, float] = (0.0, 0.0, 0.0)
    extent: tuple[float, float, float] = (0.0, 0.0, 0.0)
    points: int = 0
    grid_box: tuple[float, float, float, float] | None = None  # in the sensor grid (organised scans only)
    deviation: float = 0.0  # at the peak: scan units (the self-check: robust spreads of the surroundings)
    threshold: float = 0.0  # the expert's threshold at the peak, in the same units
    normal: float | None = None  # the largest deviation among the reference scans there (None: no reference)
    basis: str = "references"  # what it was measured against: "references" or "self-check" (its surroundings)

    def to_dict(self) -> dict:
        """Plain JSON-ready fields."""
        data = super().to_dict()
        data.update({"kind": self.kind, "depth": round(self.depth, 6), "points": self.points,
                     "centre": [round(v, 6) for v in self.centre], "extent": [round(v, 6) for v in self.extent],
                     "deviation": round(self.deviation, 6), "threshold": round(self.threshold, 6), "basis": self.basis})
        if self.normal is not None:
            data["normal_variation"] = round(self.normal, 6)
        if self.grid_box is not None:
            data["grid_box"] = [round(v, 4) for v in self.grid_box]
        return data

    def describe(self, units: str = "units") -> str:
        """The region in words: kind, depth, size and place."""
        size = " x ".join(f"{v:.3g}" for v in sorted(self.extent, reverse=True))
        depth = f"{abs(self.depth):.3g} {units} {'deep' if self.depth < 0 else 'high'}, " if self.kind != "missing surface" else ""
        return f"{self.kind} ({depth}{size} {units} across) at {self.where} (peak {self.peak:.2f})"


@dataclass
class Cluster:
    """Points of one region (rows into the array they were found in)."""

    rows: np.ndarray
    missing: bool  # True for reference points the scan lacks


@dataclass
class Finding:
    """One kind of per-point finding about a scan, in which regions are looked for: the points (the scan's,
    or reference surface it lacks), their scores, raw deviations and thresholds, how much the reference
    scans themselves vary there, and where the points are drawn in the view and lie in the sensor grid."""

    points: np.ndarray  # (N, 3) in the scan's frame
    scores: np.ndarray  # 0..1, supported (see `supported`): what is shown, ranked and reported
    raw: np.ndarray  # deviation (scan units; the self-check: robust spreads)
    limits: np.ndarray  # the threshold per point, same units (or one value)
    signed: np.ndarray  # signed deviation (scan units): - below / + above
    off: np.ndarray  # bool: far from any surface (extra material)
    spacing: float
    seen: np.ndarray  # each point's number in the view's z-buffer (ScanView.seen)
    in_grid: bool  # the points are the scan's own (rows of the prepared scan), so they have grid cells
    variation: np.ndarray | None = None  # the references' own leave-one-out deviation per point; None: unknown
    missing: bool = False
    basis: str = "references"
    single: np.ndarray | None = None  # each point's own score before support (regions are clusters of it); None: scores

    def region(self, scan: ScanView, cluster: Cluster) -> CloudRegion:
        """The region of a cluster of these points, with its figures."""
        rows = cluster.rows
        box, area, grid_box = region_box(scan, self.points[rows], self.seen[rows], rows if self.in_grid else None)
        fields = describe(cluster, self.points, self.scores, self.signed, self.off, box, area)
        peak = rows[np.argmax(self.scores[rows])]
        normal = float(self.variation[rows].max()) if self.variation is not None else None
        return CloudRegion(**fields, grid_box=grid_box, deviation=float(self.raw[peak]),
                           threshold=float(np.broadcast_to(self.limits, self.scores.shape)[peak]), normal=normal,
                           basis=self.basis)

    def regions(self, scan: ScanView) -> list[CloudRegion]:
        """The regions of the points beyond the threshold that hold a supported point (score >= 0.5).

        Every point whose supported score reaches 0.5 lies in one of them (see `supported`), so the
        verdict and the regions agree: no anomalous verdict without a region, no region below it.
        """
        single = self.scores if self.single is None else self.single
        found = clusters(self.points, single, self.spacing, missing=self.missing)
        return [self.region(scan, c) for c in found if self.scores[c.rows].max() >= 0.5]


def hottest(scan: ScanView, findings: list[Finding]) -> CloudRegion | None:
    """The place that differs most (the neighbourhood of the highest score), also when it is below the threshold."""
    found = [f for f in findings if len(f.scores)]
    if not found:
        return None
    finding = max(found, key=lambda f: float(f.scores.max()))
    centre = finding.points[int(np.argmax(finding.scores))]
    near = np.flatnonzero(np.linalg.norm(finding.points - centre, axis=1) <= CLUSTER_SPACINGS * finding.spacing)
    return finding.region(scan, Cluster(near, finding.missing))


def supported(points: np.ndarray, values: np.ndarray, spacing: float, around: np.ndarray | None = None, *,
              least: float = 0.0) -> np.ndarray:
    """Each point's value, lowered to the SUPPORT_POINTS-th highest value within SUPPORT_REACH spacings of it (itself
    included); around: `neighbourhood(points, spacing)` when it is already known. Values below `least` keep their
    own (an upper bound, too low to matter): the neighbour search is only made for the others, which is fast.

    One stray point far off is not a place that deviates; several points agreeing are. This is
    DBSCAN's rule for a core point: a point whose supported score reaches 0.5 has SUPPORT_POINTS
    points beyond the threshold within the neighbourhood `clusters` uses, itself among them, so it
    lies in a region. The image score, the largest supported score, never says anomalous without a
    region to show. The leave-one-out calibration applies the same support to the references'
    deviations (model.py), so the threshold is calibrated on the statistic the score uses.
    """
    values = np.asarray(values, np.float64)
    if len(values) < SUPPORT_POINTS:
        return np.zeros_like(values)
    rows = np.flatnonzero(values >= least) if around is None else np.arange(len(values))
    around = neighbourhood(points, spacing, rows) if around is None else around
    near = np.append(values, -np.inf)[around]  # a missing neighbour (row len(values)) counts as -inf
    agreed = -np.partition(-near, SUPPORT_POINTS - 1, axis=1)[:, SUPPORT_POINTS - 1]
    result = values.copy()
    result[rows] = np.minimum(values[rows], agreed)
    return np.clip(result, 0.0, None)


def neighbourhood(points: np.ndarray, spacing: float, rows: np.ndarray | None = None) -> np.ndarray:
    """(N, k) rows of each point's (or only these rows') nearest points within SUPPORT_REACH spacings (len(points)
    where there are fewer).

    Only the nearest SUPPORT_SEARCHED are looked at: with more within reach the support found is a
    lower bound, so the rule above still holds.
    """
    from scipy.spatial import cKDTree

    searched = min(SUPPORT_SEARCHED, len(points))
    asked = points if rows is None else points[rows]
    if not len(asked):
        return np.zeros((0, searched), np.int64)
    _, nearest = cKDTree(points).query(asked, k=searched, distance_upper_bound=SUPPORT_REACH * spacing)
    return nearest.reshape(len(asked), searched)


def clusters(points: np.ndarray, scores: np.ndarray, spacing: float, *, missing: bool = False) -> list[Cluster]:
    """DBSCAN clusters (open3d) of the points whose score reaches 0.5."""
    from tools.inputs.prepared import open3d_cloud

    rows = np.flatnonzero(scores >= 0.5)
    if len(rows) < MIN_POINTS:
        return []
    labels = np.asarray(open3d_cloud(points[rows]).cluster_dbscan(CLUSTER_SPACINGS * spacing, MIN_POINTS))
    return [Cluster(rows[labels == label], missing) for label in range(labels.max() + 1)]


def describe(cluster: Cluster, points: np.ndarray, scores: np.ndarray, signed: np.ndarray, off: np.ndarray,
             view_box: tuple, area: float) -> dict:
    """The fields of a CloudRegion for one cluster (its view box and area measured by the caller)."""
    chosen = points[cluster.rows]
    low, high = np.percentile(chosen, [2, 98], axis=0)
    peak_row = cluster.rows[np.argmax(scores[cluster.rows])]
    depth = float(signed[peak_row]) if not cluster.missing else 0.0
    kind = "missing surface" if cluster.missing else "extra material" if off[cluster.rows].mean() > 0.5 \
        else "dent" if np.median(signed[cluster.rows]) < 0 else "bulge"
    where = describe_place(view_box) + ("" if area > 0 else ", on the far side in this view")
    return {"box": view_box, "area": area, "peak": float(scores[peak_row]), "where": where,
            "kind": kind, "depth": depth, "centre": tuple(float(v) for v in (low + high) / 2),
            "extent": tuple(float(v) for v in high - low), "points": int(len(cluster.rows))}


def strongest(regions: list[CloudRegion]) -> list[CloudRegion]:
    """At most MAX_REGIONS, highest peak first."""
    return sorted(regions, key=lambda r: (-r.peak, -r.points))[:MAX_REGIONS]
