"""Evidence for one query: its 2-D view, the reference normals' views, and the experts' findings.

Shared by the analysis pipeline and the compare_with_reference tool so both see the same thing.
The knowledge base is passed in (duck-typed), so tools/ does not depend on knowledge/.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from tools.inputs.artifacts import Artifact, load
from tools.render.views import to_image


@dataclass
class ReferenceView:
    label: str
    image: object  # PIL image
    sample: object = None  # knowledge ReferenceSample, or None for a file given in this turn
    key: str = ""  # sha256 of the source file: what the picture is, for caching its encoding


@dataclass
class Evidence:
    query_image: object
    references: list[ReferenceView] = field(default_factory=list)
    expert: object = None  # tools.experts.vision.expert.ExpertReport
    series: object = None  # tools.experts.series.SeriesReport
    composite: object = None  # PIL image: reference | query | heatmap
    notes: list[str] = field(default_factory=list)
    query: Artifact | None = None  # what was inspected (a series' frame, for zoomed plots)
    expert_options: dict = field(default_factory=dict)  # the class's expert settings and the cache folder
    cache: dict = field(default_factory=dict, repr=False)  # figures worked out later (region_evidence.py)

    @property
    def nearest(self) -> ReferenceView | None:
        """The reference normal most similar to the query (the expert's choice, else the first)."""
        if not self.references:
            return None
        index = self.expert.nearest_reference if self.expert is not None else 0
        return self.references[min(index, len(self.references) - 1)]

    @property
    def score(self) -> float | None:
        report = self.expert or self.series
        return None if report is None else float(report.score)

    def region_dicts(self) -> list[dict]:
        """Where the experts point, as dicts: the vision expert's regions or the series expert's windows."""
        if self.expert is not None:
            return [r.to_dict() for r in self.expert.regions]
        return self.series.regions() if self.series is not None else []

    def summary(self) -> str:
        """The findings in words, for the model and for the person."""
        lines = []
        if self.expert is not None:
            lines.append(self.expert.summary())
            if self.references:
                lines.append(f"Most similar reference: {self.nearest.label}.")
        if self.series is not None:
            lines.append(self.series.summary())
        lines += self.notes
        return "\n".join(lines) or "No expert evidence."


@lru_cache(maxsize=64)
def _reference_view(path: str, sha: str, class_name: str | None, cache_dir: str | None):
    artifact = load(Path(path))
    return to_image(artifact, class_name=class_name, cache_dir=Path(cache_dir) if cache_dir else None)


def stored_references(kb, class_name: str | None, query_image, k: int, cache_dir: Path | None) -> list[ReferenceView]:
    """The k stored reference normals nearest to the query, rendered like the query."""
    if not class_name or k <= 0:
        return []
    samples = kb.nearest_references(class_name, query_image, k)
    cache = str(cache_dir) if cache_dir else None
    return [ReferenceView(f"reference {s.id}", _reference_view(str(s.path), s.sha256, class_name, cache), s, s.sha256)
            for s in samples]


def turn_references(artifacts: list[Artifact], class_name: str | None, cache_dir: Path | None) -> list[ReferenceView]:
    """Reference normals uploaded with this turn (not stored)."""
    return [ReferenceView(f"reference {a.name}", to_image(a, class_name=class_name, cache_dir=cache_dir), key=a.sha256)
            for a in artifacts]


def gather(query: Artifact, query_image, references: list[ReferenceView], *, class_settings: dict | None = None,
           cache_dir: Path | None = None, use_expert: bool = True) -> Evidence:
    """Run the experts that apply to this kind of input."""
    options = {**(class_settings or {}), "cache_dir": cache_dir}
    evidence = Evidence(query_image, list(references), query=query, expert_options=options)
    if not use_expert:
        return evidence
    if query.kind == "series":
        from tools.experts.series import detect

        evidence.series = detect(query.payload)
        evidence.composite = _series_picture(query.payload, evidence.series)
        return evidence
    if not references:
        evidence.notes.append("No reference normal is available, so the vision expert could not compare.")
        return evidence
    evidence.expert = vision_expert(query_image, [r.image for r in references], options)
    evidence.composite = _composite(query_image, references, evidence.expert)
    return evidence


def vision_expert(query_image, reference_images: list, options: dict):
    """The vision expert's report for a picture against reference pictures, with a class's expert options
    (rotation_invariant, matching) and the cache folder (`cache_dir`) as Evidence.expert_options holds them."""
    from tools.experts.vision.expert import compare

    cache_dir = options.get("cache_dir")
    return compare(query_image, reference_images, cache_dir=Path(cache_dir) / "expert" if cache_dir else None,
                   rotation_invariant=bool(options.get("rotation_invariant", False)),
                   matching=options.get("matching", "auto"))


def _composite(query_image, references, report):
    from tools.render.imageops import composite, overlay_heatmap

    nearest = references[min(report.nearest_reference, len(references) - 1)]
    return composite([("reference", nearest.image), ("query", query_image),
                      (f"heatmap (score {report.score:.2f})", overlay_heatmap(query_image, report.heatmap))])


def _series_picture(frame, report):
    """The plot with the flagged windows shaded and the expected band drawn: the series expert's picture."""
    from tools.render.series import render_series

    return render_series(frame, windows=[(w.start, w.end) for w in report.windows],
                         marks=[(p.row, p.column) for p in report.points[:20]], bands=report.bands,
                         title=f"series expert ({report.mode}): score {report.score:.2f}")
