"""The 3-D expert: compares a scan with reference scans of its class in 3-D.

Method: the reference scans are aligned into one reference surface and calibrated leave-one-out
(tools/experts/cloud/model.py). A query scan is registered to that surface (FPFH + RANSAC, then
point-to-plane ICP), each of its points gets its deviation from the surface (the distance along
the reference normals, averaged over about 20 points) and each reference point the distance to the
scan (surface the scan lacks). Points beyond the calibrated threshold form regions (DBSCAN), which
are mapped into the rendered view (boxes, heatmap) and, for organised scans, into the sensor grid.
The image score is the largest supported score (regions.supported: a point counts only as much as
enough of its DBSCAN neighbours agree), so an anomalous verdict always comes with a region.
The report has the vision expert's shape, so the agent, the offline backend, the UI and `eval` use
it unchanged. Without any reference, tools/experts/cloud/selfcheck.py gives weaker evidence.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import replace

import numpy as np

from tools.errors import InputError
from tools.experts.cloud import cache as model_cache
from tools.experts.cloud.model import ReferenceModel, fit
from tools.experts.cloud.regions import SCORE_FLOOR, CloudRegion, Finding, hottest, strongest, supported
from tools.experts.cloud.report import CloudReport, to_score
from tools.experts.cloud.views import ScanView
from tools.inputs.prepared import PreparedCloud, typical_spacing

METHOD_VERSION = 2  # 2: scores need the support of their neighbours (regions.supported)
_MODELS: OrderedDict[str, ReferenceModel] = OrderedDict()
_MODELS_KEEP = 4
_MODELS_LOCK = threading.Lock()


class CloudExpert:
    """Fit on reference scans of one class, then score query scans."""

    def __init__(self, *, cache_dir=None, seed: int = 0):
        self.cache_dir, self.seed = cache_dir, seed
        self.model: ReferenceModel | None = None
        self.last_measurement = None  # the raw measurement behind the last report (benchmarks re-use it)
        self.loaded_from: str | None = None  # "memory" or "disk" when the last fit was cached

    def fit(self, references: list[PreparedCloud], keys: list[str] | None = None) -> CloudExpert:
        """Build (or load from the cache) the reference model; keys identify the scans (their sha256)."""
        if not references:
            raise InputError("the 3-D expert needs at least one reference scan; add one with `anomaly-chat kb add-ref`")
        key = model_cache.key(keys, METHOD_VERSION) if keys else None
        model, self.loaded_from = (_MODELS.get(key), "memory") if key else (None, None)
        if model is None and key and self.cache_dir:
            model, self.loaded_from = model_cache.load(self.cache_dir, key), "disk"
        if model is None:
            model, self.loaded_from = fit(references, self.seed), None
            if key and self.cache_dir:
                model_cache.save(self.cache_dir, key, model)
        if key:
            _remember(key, model)
        self.model = model
        return self

    def score(self, scan: ScanView) -> CloudReport:
        """Compare a prepared query scan with the fitted references."""
        if self.model is None:
            raise InputError("the 3-D expert has no references yet; call fit(references) first")
        model = self.model
        measured = self.last_measurement = model.measure(scan.cloud, self.seed)
        surface = measured.alignment.inverse(model.surface.points)  # the reference surface in the scan's frame
        deviating, lacked = findings = self._findings(scan, measured, surface)
        scan.extra_points = lacked.points
        score, raw, threshold = _strongest(findings)
        shown = deviating.single, (lacked.points, lacked.single)  # each point's own score, drawn and mapped
        nearest = int(np.argmax(np.bincount(measured.points.owner, minlength=model.count)))
        return CloudReport(
            score, raw, threshold, score >= 0.5, scan.heatmap(shown[0], shown[1][1]), _regions(findings, scan),
            nearest, self.describe(), point_scores=shown[0], deviation=measured.points.signed, lacking=shown[1],
            grid_map=scan.grid_map(*shown), references=model.count, reference_points=surface[model.surface.owner == nearest],
            alignment={"fitness": round(measured.points.fitness, 4), "residual": measured.points.residual,
                       "start": measured.alignment.start},
            notes=_alignment_notes(measured.points.fitness), hottest=hottest(scan, findings), camera=scan.camera,
            scan=scan.cloud)

    def describe(self) -> str:
        """The method in one line (for reports and the UI)."""
        count = self.model.count if self.model else 0
        calibration = self.model.normal_scores.get("method", "") if self.model else ""
        return (f"3-D registration and point-to-surface deviation v{METHOD_VERSION} ({count} reference scan(s), "
                f"threshold from {calibration})")

    def _findings(self, scan: ScanView, measured, surface: np.ndarray) -> list[Finding]:
        """The scan's deviating points, and the reference surface (in the scan's frame) it lacks: only what is drawn,
        where the point's own score reaches 0.25. Scores are supported (regions.supported); `single` keeps each point's own."""
        model, points = self.model, scan.cloud.points
        variation = model.variation
        limits, spacing = model.thresholds[measured.points.nearest, 0], typical_spacing(points)
        single = to_score(measured.points.magnitude, limits).astype(np.float32)
        deviating = Finding(points, supported(points, single, spacing, least=SCORE_FLOOR), measured.points.magnitude, limits,
                            measured.points.signed, measured.points.off_surface, spacing, np.arange(len(points)), True,
                            None if variation is None else variation[measured.points.nearest, 0], single=single)
        lacking = to_score(measured.lacking, model.thresholds[:, 1]).astype(np.float32)
        lacking_supported = supported(surface, lacking, model.surface.spacing, least=SCORE_FLOOR)
        keep = lacking >= 0.25
        kept = int(keep.sum())
        lacked = Finding(surface[keep], lacking_supported[keep], measured.lacking[keep], model.thresholds[keep, 1],
                         np.zeros(kept), np.zeros(kept, bool), model.surface.spacing, len(points) + np.arange(kept),
                         False, None if variation is None else variation[keep, 1], missing=True, single=lacking[keep])
        return [deviating, lacked]


def _regions(findings: list[Finding], scan: ScanView) -> list[CloudRegion]:
    """The strongest regions; reference surface lacked where the scan already deviates is the same place."""
    deviating, lacked = findings
    found = deviating.regions(scan)
    for region in lacked.regions(scan):
        if not _inside_any(region, found, deviating.spacing):  # a dent also leaves its old surface empty
            found.append(region)
    return strongest(found)


def self_check(scan: ScanView) -> CloudReport:
    """Weaker evidence without any reference scan: each place against the surface around it (selfcheck.py)."""
    from tools.experts.cloud.selfcheck import THRESHOLD_Z, surface_offsets

    cloud = scan.cloud
    offsets, z = surface_offsets(cloud)
    single, spacing = to_score(np.abs(z), THRESHOLD_Z).astype(np.float32), typical_spacing(cloud.points)
    finding = Finding(cloud.points, supported(cloud.points, single, spacing, least=SCORE_FLOOR), np.abs(z), np.float32(THRESHOLD_Z), offsets,
                      np.zeros(len(offsets), bool), spacing, np.arange(len(cloud.points)), True, basis="self-check",
                      single=single)
    regions = [replace(r, kind="bump" if r.depth > 0 else "dent") for r in finding.regions(scan)]
    score, raw, threshold = _strongest([finding])
    note = ("No reference scan is stored for this class: this is a check of the scan against its own surroundings, "
            "weaker evidence than a comparison. Add reference scans with `anomaly-chat kb add-ref CLASS FILE...`, "
            "in the knowledge panel, or attach them with the query.")
    place = hottest(scan, [finding])
    place = place and replace(place, kind="bump" if place.depth > 0 else "dent")
    return CloudReport(score, raw, threshold, score >= 0.5, scan.heatmap(single), strongest(regions), 0,
                       f"surface self-check v{METHOD_VERSION} (no reference scan; offsets in robust spreads)",
                       point_scores=single, deviation=offsets, grid_map=scan.grid_map(single), evidence="self-check",
                       notes=[note], hottest=place, camera=scan.camera, scan=cloud)


def _inside_any(region: CloudRegion, regions: list[CloudRegion], spacing: float) -> bool:
    """Whether the region's centre lies within (a few spacings of) the 3-D box of one of the regions."""
    centre = np.asarray(region.centre)
    return any(np.all(np.abs(centre - np.asarray(r.centre)) <= np.asarray(r.extent) / 2 + 3 * spacing) for r in regions)


def _strongest(findings: list[Finding]) -> tuple[float, float, float]:
    """(score, raw deviation, its threshold) of the most anomalous supported place over the findings."""
    best = (0.0, 0.0, 1.0)
    for finding in findings:
        if len(finding.scores) and float(finding.scores.max()) > best[0]:
            i = int(np.argmax(finding.scores))
            best = (float(finding.scores[i]), float(finding.raw[i]),
                    float(np.broadcast_to(finding.limits, finding.scores.shape)[i]))
    return best


def _alignment_notes(fitness: float) -> list[str]:
    if fitness >= 0.6:
        return []
    return [f"Only {fitness:.0%} of the scan's points found the reference surface after alignment: the scan "
            "may show another part, another side, or a large change; treat the deviation map with care."]


def _remember(key: str, model: ReferenceModel) -> None:
    with _MODELS_LOCK:
        _MODELS[key] = model
        _MODELS.move_to_end(key)
        while len(_MODELS) > _MODELS_KEEP:
            _MODELS.popitem(last=False)
