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

from tools.errors import InputError
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
    query: Artifact | None = None  # what was inspected (a series' frame, for zoomed plots)
    expert_options: dict = field(default_factory=dict)  # the class's expert settings and the cache folder
    cache: dict = field(default_factory=dict, repr=False)  # figures and pictures worked out later (places.py)

    @property
    def nearest(self) -> ReferenceView | None:
        """The reference normal most similar to the query (the expert's choice, else the first)."""
        if not self.references:
            return None
        index = self.expert.nearest_reference if self.expert is not None else 0
        return self.references[min(index, len(self.references) - 1)]

    def nearest_picture(self):
        """The nearest reference as the query's view shows it, for pictures of the same place on both: an expert
        that aligns the reference to the query draws it (the 3-D expert), else the reference's own view."""
        if "nearest picture" not in self.cache:
            aligned = getattr(self.expert, "aligned_reference", None)
            picture = aligned() if callable(aligned) else None
            if picture is None and self.nearest is not None:
                picture = self.nearest.image
            self.cache["nearest picture"] = picture
        return self.cache["nearest picture"]

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


@dataclass(frozen=True)
class Expert:
    """The expert that judges one kind of input: its name (shown as the step), how it runs, and how
    many stored reference normals it wants at least (it calibrates on them)."""

    name: str
    run: Callable  # run(evidence, class_name) -> None: fills the Evidence (query, references, expert_options in it)
    references: int = 1


EXPERTS: dict[str, Expert] = {}
SCAN_REFERENCES = 4  # stored reference scans a point cloud is compared with, at least: one is too few to calibrate on


def register_expert(name: str, *kinds: str, references: int = 1):
    """Register the expert for these artifact kinds (decorator); `references`: the stored ones it wants at least."""
    def register(run: Callable) -> Callable:
        for kind in kinds:
            EXPERTS[kind] = Expert(name, run, references)
        return run
    return register


def expert_name(kind: str) -> str:
    """The name of the expert that judges this kind of input."""
    return EXPERTS[kind].name if kind in EXPERTS else "Vision expert"


def references_wanted(kind: str, k: int) -> int:
    """How many stored reference normals to compare with: k, raised to what the kind's expert needs (0 stays 0)."""
    expert = EXPERTS.get(kind)
    return max(k, expert.references) if k > 0 and expert is not None else k


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
    options = {**(class_settings or {}), "cache_dir": cache_dir}
    evidence = Evidence(query_image, list(references), query=query, expert_options=options)
    if use_expert:
        EXPERTS.get(query.kind, EXPERTS["image"]).run(evidence, class_name)
    return evidence


@register_expert("Series expert", "series")
def _series_expert(evidence: Evidence, class_name: str | None) -> None:
    from tools.experts.series import MIN_ROWS, detect

    rows = len(evidence.query.payload)
    if rows < MIN_ROWS:
        raise InputError(f"{evidence.query.name}: the series has {rows} row(s); the series expert needs at least "
                         f"{MIN_ROWS} to tell a normal course from an anomaly: upload a longer stretch")
    evidence.series = detect(evidence.query.payload)
    evidence.composite = _series_picture(evidence.query.payload, evidence.series)


@register_expert("Vision expert", "image", "video")
def _vision_expert(evidence: Evidence, class_name: str | None) -> None:
    if not evidence.references:
        evidence.notes.append("No reference normal is available, so the vision expert could not compare.")
        return
    clips = [r.artifact for r in evidence.references if r.artifact is not None and r.artifact.kind == "video"]
    if evidence.query.kind == "video" and len(clips) == len(evidence.references):
        evidence.expert = video_expert(evidence.query, clips, evidence.expert_options)
    else:
        evidence.expert = vision_expert(evidence.query_image, [r.image for r in evidence.references],
                                        evidence.expert_options)
    evidence.composite = _composite(evidence.query_image, evidence.references, evidence.expert)


@register_expert("3-D expert", "point_cloud", references=SCAN_REFERENCES)
def _scan_expert(evidence: Evidence, class_name: str | None) -> None:
    """The scans themselves compared in 3-D (without any reference scan: the scan's self-check)."""
    from tools.experts.cloud.inspect import inspect_scan

    scans = [r.artifact for r in evidence.references if r.artifact is not None]
    evidence.expert, evidence.composite = inspect_scan(
        evidence.query, scans, image_size=evidence.query_image.size, class_name=class_name,
        cache_dir=evidence.expert_options.get("cache_dir"))


def vision_expert(query_image, reference_images: list, options: dict):
    """The vision expert's report for a picture against reference pictures, with a class's expert options
    (rotation_invariant, matching) and the cache folder (`cache_dir`) as Evidence.expert_options holds them."""
    from tools.experts.vision.expert import compare

    cache_dir = options.get("cache_dir")
    return compare(query_image, reference_images, cache_dir=Path(cache_dir) / "expert" if cache_dir else None,
                   rotation_invariant=bool(options.get("rotation_invariant", False)),
                   matching=options.get("matching", "auto"))


def video_expert(query: Artifact, clips: list[Artifact], options: dict):
    """The vision expert's report for a video against reference videos, frame by frame (its heatmap on the grid)."""
    from tools.experts.vision.frames import compare_video

    cache_dir = options.get("cache_dir")
    return compare_video(query, clips, {"cache_dir": Path(cache_dir) / "expert" if cache_dir else None,
                                        "rotation_invariant": bool(options.get("rotation_invariant", False)),
                                        "matching": _video_matching(options.get("matching", "auto"))})


def _video_matching(chosen: str) -> str:
    """Frames of a clip differ by motion: a part moves between reference frames, so a query patch is compared
    with every reference patch (free), unless the class says otherwise. Leave-one-out among frames of a moving
    part flips between the two on small differences (one test encoding chose position, threshold 4.25 against
    3.38, and missed a red frame)."""
    return "free" if chosen == "auto" else chosen


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
