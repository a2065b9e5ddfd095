"""Evidence for one query: its 2-D view, the reference normals' views, and the experts' findings.

Shared by the analysis pipeline and the compare_with_reference tool so both see the same thing.
The knowledge base is passed in (duck-typed), so tools/ does not depend on knowledge/. Each kind of
input has one expert, registered with `@register_expert`: the vision expert for images and video
frames, the series expert for series, the 3-D expert for point clouds (which compares the scans
themselves, not their pictures).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from tools.inputs.artifacts import Artifact, load
from tools.render.views import fix_class_camera, reference_image, to_image


@dataclass
class ReferenceView:
    label: str
    image: object  # PIL image
    sample: object = None  # knowledge ReferenceSample, or None for a file given in this turn
    key: str = ""  # sha256 of the source file: what the picture is, for caching its encoding
    artifact: object = None  # the loaded file (an expert may compare more than the picture: scans in 3-D)


@dataclass
class Evidence:
    query_image: object
    references: list[ReferenceView] = field(default_factory=list)
    expert: object = None  # an ExpertReport (tools.experts.vision.expert; the 3-D expert's CloudReport has its shape)
    series: object = None  # tools.experts.series.SeriesReport
    composite: object = None  # PIL image: reference | query | heatmap (or deviation)
    notes: list[str] = field(default_factory=list)

    @property
    def score(self) -> float | None:
        report = self.expert or self.series
        return None if report is None else float(report.score)

    def summary(self) -> str:
        """The findings in words, for the model and for the person."""
        lines = []
        if self.expert is not None:
            lines.append(self.expert.summary())
            if self.references:
                nearest = self.references[min(self.expert.nearest_reference, len(self.references) - 1)]
                lines.append(f"Most similar reference: {nearest.label}.")
        if self.series is not None:
            lines.append(self.series.summary())
        lines += self.notes
        return "\n".join(lines) or "No expert evidence."


@dataclass(frozen=True)
class Expert:
    """The expert that judges one kind of input: its name (shown as the step) and how it runs."""

    name: str
    run: Callable  # run(evidence, query, references, settings, cache_dir, class_name) -> None (fills evidence)


EXPERTS: dict[str, Expert] = {}


def register_expert(name: str, *kinds: str):
    """Register the expert for these artifact kinds (decorator)."""
    def register(run: Callable) -> Callable:
        for kind in kinds:
            EXPERTS[kind] = Expert(name, run)
        return run
    return register


def expert_name(kind: str) -> str:
    """The name of the expert that judges this kind of input."""
    return EXPERTS[kind].name if kind in EXPERTS else "Vision expert"


@lru_cache(maxsize=64)
def _reference_view(path: str, sha: str, class_name: str | None, cache_dir: str | None):
    artifact = load(Path(path))
    return artifact, reference_image(artifact, class_name=class_name, cache_dir=Path(cache_dir) if cache_dir else None)


def stored_references(kb, class_name: str | None, query_image, k: int, cache_dir: Path | None) -> list[ReferenceView]:
    """The k stored reference normals nearest to the query, rendered like the query."""
    if not class_name or k <= 0:
        return []
    samples = kb.nearest_references(class_name, query_image, k)
    cache = str(cache_dir) if cache_dir else None
    views = [(s, *_reference_view(str(s.path), s.sha256, class_name, cache)) for s in samples]
    return [ReferenceView(f"reference {s.id}", image, s, s.sha256, artifact) for s, artifact, image in views]


def turn_references(artifacts: list[Artifact], class_name: str | None, cache_dir: Path | None) -> list[ReferenceView]:
    """Reference normals uploaded with this turn (not stored); reference scans may fix the class's camera."""
    fix_class_camera(class_name, cache_dir, artifacts)
    return [ReferenceView(f"reference {a.name}", to_image(a, class_name=class_name, cache_dir=cache_dir), key=a.sha256,
                          artifact=a) for a in artifacts]


def gather(query: Artifact, query_image, references: list[ReferenceView], *, class_settings: dict | None = None,
           cache_dir: Path | None = None, use_expert: bool = True, class_name: str | None = None) -> Evidence:
    """Run the expert registered for this kind of input."""
    evidence = Evidence(query_image, list(references))
    if use_expert:
        expert = EXPERTS.get(query.kind, EXPERTS["image"])
        expert.run(evidence, query, references, class_settings or {}, cache_dir, class_name)
    return evidence


@register_expert("Series expert", "series")
def _series_expert(evidence, query, references, settings, cache_dir, class_name) -> None:
    from tools.experts.series import detect

    evidence.series = detect(query.payload)


@register_expert("Vision expert", "image", "video")
def _vision_expert(evidence, query, references, settings, cache_dir, class_name) -> None:
    if not references:
        evidence.notes.append("No reference normal is available, so the vision expert could not compare.")
        return
    evidence.expert = _compare(evidence.query_image, references, settings, cache_dir)
    evidence.composite = _composite(evidence.query_image, references, evidence.expert)


@register_expert("3-D expert", "point_cloud")
def _scan_expert(evidence, query, references, settings, cache_dir, class_name) -> None:
    from tools.experts.cloud.inspect import inspect_scan

    scans = [r.artifact for r in references if r.artifact is not None]
    evidence.expert, evidence.composite = inspect_scan(query, scans, image_size=evidence.query_image.size,
                                                       class_name=class_name, cache_dir=cache_dir)


def _compare(query_image, references, settings: dict, cache_dir: Path | None):
    from tools.experts.vision.expert import compare

    return compare(query_image, [r.image for r in references], cache_dir=cache_dir / "expert" if cache_dir else None,
                   rotation_invariant=bool(settings.get("rotation_invariant", False)),
                   matching=settings.get("matching", "auto"))


def _composite(query_image, references, report):
    from tools.render.imageops import composite, overlay_heatmap

    nearest = references[min(report.nearest_reference, len(references) - 1)]
    return composite([("reference", nearest.image), ("query", query_image),
                      (f"heatmap (score {report.score:.2f})", overlay_heatmap(query_image, report.heatmap))])
