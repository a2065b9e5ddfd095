"""The 3-D expert's report: the vision expert's ExpertReport shape, plus what a 3-D comparison knows."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tools.experts.vision.expert import ExpertReport

SCORE_SHARPNESS = 4.0  # how fast the 0..1 score leaves 0.5 around the threshold


def to_score(raw, threshold: float):
    """Map raw deviations to [0, 1]: monotone, exactly 0.5 at the threshold."""
    raw = np.maximum(np.asarray(raw, dtype=np.float64), 1e-12)
    return 1.0 / (1.0 + (np.maximum(threshold, 1e-12) / raw) ** SCORE_SHARPNESS)


@dataclass
class CloudReport(ExpertReport):
    """Score, verdict, heatmap (in the rendered view's pixels) and regions, as the agent, UI and eval expect them.

    Beyond the ExpertReport fields: per-point scores and signed deviation of the prepared scan, the
    reference surface the scan lacks (in the scan's frame), a per-cell map for organised scans, and
    how well the scan was aligned.
    """

    point_scores: np.ndarray | None = field(default=None, repr=False)  # 0..1 per prepared scan point
    deviation: np.ndarray | None = field(default=None, repr=False)  # signed, scan units, per prepared point
    lacking: tuple | None = field(default=None, repr=False)  # (points K x 3 in the scan frame, scores K)
    grid_map: np.ndarray | None = field(default=None, repr=False)  # H x W 0..1 over the sensor grid (NaN: no point)
    reference_points: np.ndarray | None = field(default=None, repr=False)  # the nearest reference, in the scan's frame
    evidence: str = "references"  # "references", or "self-check" (no reference: weaker evidence)
    references: int = 0
    alignment: dict = field(default_factory=dict)  # fitness, residual, start
    notes: list[str] = field(default_factory=list)
    hottest: object = None  # CloudRegion: the place that differs most, also below the threshold (follow-ups)
    camera: object = field(default=None, repr=False)  # the rendered view's camera (heatmap and boxes are in it)
    scan: object = field(default=None, repr=False)  # the prepared query scan (PreparedCloud), for pictures of a place

    def summary(self) -> str:
        """A short factual text: how it compared, the score, the verdict and the regions in words."""
        verdict = "anomalous" if self.anomalous else "within the normal range"
        parts = [f"3-D expert: anomaly score {self.score:.2f} (0.50 = threshold; largest "
                 f"deviation {self.raw_score:.3g} vs threshold {self.threshold:.3g}, in the scan's units): {verdict}."]
        if self.alignment:
            parts.append(f"Alignment to the references: {self.alignment['fitness']:.0%} of the points matched, "
                         f"residual {self.alignment['residual']:.3g}.")
        if self.regions:
            parts.append("Regions beyond the threshold: " + "; ".join(_region_words(r) for r in self.regions) + ".")
        parts += self.notes
        if self.evidence == "references":
            parts.append(f"Most similar reference: number {self.nearest_reference + 1}.")
        return " ".join(parts + [f"Method: {self.method}."])

    def explain(self, subject: str = "part") -> str:
        """What the expert did and found, in full sentences (the offline backend's reasoning)."""
        if self.evidence == "self-check":
            parts = [f"No reference scan is stored for this {subject}, so the 3-D expert checked the scan against "
                     "itself: each place is compared with the smooth surface around it. This is weaker evidence than a "
                     "comparison with reference scans; it finds local dents, bumps and lumps, not a wrong or missing part."]
        else:
            fitted = (f" ({self.alignment['fitness']:.0%} of its points matched, residual {self.alignment['residual']:.3g})"
                      if self.alignment else "")
            parts = [f"The 3-D expert aligned the query {subject} to {self.references} reference scan(s){fitted} and "
                     "measured how far each point lies from the reference surface and which reference surface it lacks."]
        parts.append(f"Its anomaly score is {self.score:.2f} (0.5 is the threshold calibrated on "
                     f"{'the references' if self.evidence == 'references' else 'the scan itself'}).")
        if self.anomalous and self.regions:
            parts.append("Strongest deviation: " + _region_words(self.regions[0]) + ".")
            if len(self.regions) > 1:
                parts.append(f"{len(self.regions) - 1} further region(s) deviate less.")
        elif not self.anomalous:
            parts.append("No place deviates by more than the calibrated normal variation.")
        return " ".join(parts + self.notes)

    def aligned_reference(self):
        """The nearest reference scan aligned to the query and seen through the query view's camera (so a box on
        the view covers the same place on both), or None without a reference or camera."""
        if self.camera is None or self.reference_points is None or not len(self.reference_points):
            return None
        from tools.render.cloud import as_prepared, render_shaded

        return render_shaded(as_prepared(self.reference_points), self.camera)

    def place_pictures(self, region: dict):
        """(box, [(label, picture)]): the aligned reference, the query and the deviation colours seen facing a
        place (a region dict with a 3-D centre), the place's box in them; None without the scan or a centre."""
        if self.scan is None or self.camera is None or region.get("centre") is None:
            return None
        from tools.experts.cloud.pictures import place_views

        return place_views(self, self.scan, self.camera, region)

    def to_dict(self) -> dict:
        """JSON-ready fields, without the arrays."""
        data = super().to_dict()
        data.update({"evidence": self.evidence, "references": self.references, "alignment": self.alignment,
                     "notes": list(self.notes)})
        return data


def _region_words(region) -> str:
    describe = getattr(region, "describe", None)
    return describe() if describe else f"{region.where} (peak {region.peak:.2f})"
