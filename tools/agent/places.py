"""Where an analysis deviates, with figures: the places behind "why?", "where exactly?" and "compare".

`places(evidence, count)` gives the strongest deviating places of an analysis (the vision expert's
regions, a point-cloud expert's regions, the series expert's windows; for a part judged normal, the
place that differs most, still below the threshold). For pictures the vision expert judged, each
place carries how far the query deviates there relative to how much the reference normals differ
from one another at the same place: every reference is compared with the others by the same expert
(leave-one-out), and its distance inside the place's box is one sample of normal variation. A
region that brings its own figures (the 3-D expert's: deviation and threshold at the place, and the
largest deviation the reference scans show among themselves there) is taken as it is measured.
`describe(region)` says where a region is in its modality's terms (image box, time window with the
value against its expected band, 3-D centre and extent). `rules_for_place` picks the rules whose
words name that part of the object. Shared by the agent's show_regions tool and the offline
backend's answers, so a model and the built-in answers see the same figures.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

MAX_SPREAD_REFERENCES = 4  # each costs one expert fit on the others: enough for a spread, bounded in time
HOTTEST_HALF_SIZE = 0.06  # the box drawn around the hottest point of a part judged normal
PLACE_WORDS = {  # the parts of an object a rule or a region can name, by the words that name them
    "centre": ("centre", "center", "central", "middle"),
    "upper": ("upper", "top"),
    "lower": ("lower", "bottom"),
    "left": ("left",),
    "right": ("right",),
    "edge": ("edge", "edges", "border", "rim", "corner", "corners", "outline", "perimeter"),
}


@dataclass
class Place:
    """One place the experts point at, strongest first, with the figures behind it."""

    number: int  # 1 = strongest
    region: dict  # as in Verdict.regions: an image box, a series window or a 3-D region
    beyond_threshold: bool  # False: the place that differs most in a part judged normal
    deviation: float | None = None  # the vision expert's distance at the place (query vs the references)
    normal_spread: list[float] = field(default_factory=list)  # each reference vs the others, at the same place
    threshold: float | None = None  # the expert's calibrated distance threshold
    spread_of: str = "the reference normals"  # whose differences normal_spread holds, in words

    @property
    def ratio(self) -> float | None:
        """The query's deviation over the largest difference among the reference normals there (None: unknown)."""
        if self.deviation is None or not self.normal_spread or self.normals_agree:
            return None
        return self.deviation / max(self.normal_spread)

    @property
    def normals_agree(self) -> bool:
        """The reference normals do not differ at the place (below 1 % of the threshold): a ratio would be noise."""
        floor = 0.01 * self.threshold if self.threshold else 0.0
        return bool(self.normal_spread) and max(self.normal_spread) <= max(floor, 1e-9)


def places(evidence, count: int = 1) -> list[Place]:
    """The `count` strongest places of an analysis, with their figures (empty when the experts found none)."""
    if evidence is None:
        return []
    regions = evidence.region_dicts()
    found = [Place(i, region, True) for i, region in enumerate(regions[:count], 1)]
    report = evidence.expert
    hottest = _place_that_differs_most(report) if not found and report is not None else None
    if hottest is not None:  # beyond the threshold only when too small to outline as a region
        found = [Place(1, hottest, hottest["peak"] >= 0.5)]
    if report is not None:
        for place in found:
            _measure(evidence, place)
    return found


def has_places(evidence) -> bool:
    """True when the experts point somewhere (regions or windows), or a heatmap holds a place that differs most."""
    if evidence is None:
        return False
    return bool(evidence.region_dicts()) or getattr(evidence.expert, "heatmap", None) is not None


def _place_that_differs_most(report) -> dict | None:
    """The expert's own choice when it makes one (the 3-D expert: a place on the scan), else the heatmap's hottest."""
    own = getattr(report, "hottest", None)
    if own is not None:
        return own.to_dict()
    heatmap = getattr(report, "heatmap", None)
    return hottest_place(heatmap) if heatmap is not None else None


def hottest_place(heatmap: np.ndarray) -> dict:
    """A small box around the heatmap's hottest point, as a region dict (peak below 0.5 for a normal part)."""
    from tools.experts.vision.regions import describe_place

    height, width = heatmap.shape
    row, column = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    cx, cy, half = (column + 0.5) / width, (row + 0.5) / height, HOTTEST_HALF_SIZE
    box = (max(0.0, cx - half), max(0.0, cy - half), min(1.0, cx + half), min(1.0, cy + half))
    return {"box": [round(v, 4) for v in box], "area": None, "peak": round(float(heatmap.max()), 4),
            "where": describe_place(box)}


def _measure(evidence, place: Place) -> None:
    if place.region.get("threshold") is not None:  # measured by the expert itself (the 3-D expert, in 3-D)
        _as_measured(evidence, place)
        return
    box = place.region.get("box")
    if not box:
        return
    report = evidence.expert
    place.threshold = float(report.threshold)
    place.deviation = distance_in_box(report.heatmap, box, report.threshold)
    place.normal_spread = [distance_in_box(r.heatmap, box, r.threshold) for r in _spread_reports(evidence)]


def _as_measured(evidence, place: Place) -> None:
    region = place.region
    place.deviation, place.threshold = float(region["deviation"]), float(region["threshold"])
    if region.get("normal_variation") is not None:
        place.normal_spread = [float(region["normal_variation"])]
        one = getattr(evidence.expert, "references", 0) == 1
        place.spread_of = ("the reference scan's two halves, each measured against the other" if one
                           else "the reference scans, each measured against the others")


def _spread_reports(evidence) -> list:
    """Each reference (up to MAX_SPREAD_REFERENCES) judged against the others; worked out once per analysis."""
    if "spread" not in evidence.cache:
        from tools.agent.evidence import vision_expert

        refs = evidence.references[:MAX_SPREAD_REFERENCES]
        evidence.cache["spread"] = [
            vision_expert(ref.image, [other.image for other in refs if other is not ref], evidence.expert_options)
            for ref in refs] if len(refs) >= 2 else []
    return evidence.cache["spread"]


def distance_in_box(heatmap: np.ndarray, box, threshold: float) -> float:
    """The expert's distance at the hottest point inside a normalised box of its heatmap."""
    height, width = heatmap.shape
    x0, y0, x1, y1 = box
    rows = slice(int(y0 * height), max(int(y0 * height) + 1, math.ceil(y1 * height)))
    columns = slice(int(x0 * width), max(int(x0 * width) + 1, math.ceil(x1 * width)))
    return distance_of(float(np.max(heatmap[rows, columns])), threshold)


def distance_of(score: float, threshold: float) -> float:
    """The distance the expert maps to `score` (its score mapping inverted by bisection: it is monotone)."""
    from tools.experts.vision.calibration import to_score

    wanted = min(max(score, 1e-6), 1 - 1e-6)
    low, high = threshold * 1e-3, threshold * 1e3
    for _ in range(60):
        middle = math.sqrt(low * high)
        low, high = (middle, high) if float(to_score(middle, threshold)) < wanted else (low, middle)
    return math.sqrt(low * high)


def deviation_text(place: Place) -> str:
    """How far the query deviates at a place, against the threshold and the reference normals ('' without figures)."""
    if place.deviation is None:
        return ""
    if place.region.get("basis") is not None:
        return _scan_text(place)
    text = f"there the expert's distance is {place.deviation:.2f} (threshold {place.threshold:.2f})"
    spread = place.normal_spread
    if place.normals_agree:
        return text + f"; the {len(spread)} reference normals do not differ from one another there (at most {max(spread):.2g})"
    if place.ratio is None:
        return text + ("; with a single reference normal there is no spread among normals to compare with (the "
                       "threshold comes from shifted and relit copies of it)")
    return (text + f"; between the {len(spread)} reference normals at the same place it is {min(spread):.2f} to "
            f"{max(spread):.2f}, so the query differs {place.ratio:.1f} times as much as the normals differ from one "
            "another there")


def _scan_text(place: Place) -> str:
    """The 3-D expert's figures at a place, in the scan's units (the self-check: in robust spreads)."""
    if place.region["basis"] == "self-check":
        return (f"there the surface stands {place.deviation:.1f} robust spreads off the surface around it (threshold "
                f"{place.threshold:.0f}); with no reference scan there is no normal variation to compare with")
    figures = f"{place.deviation:.3g} (threshold there {place.threshold:.3g}, in the scan's units)"
    if place.region.get("kind") == "missing surface":
        text = f"there the scan lacks reference surface: its nearest points lie beyond the sampling gap by {figures}"
    else:
        text = f"there the scan deviates from the reference surface by {figures}"
    if place.normals_agree:
        return text + f"; {place.spread_of}, do not differ from one another there (at most {max(place.normal_spread):.2g})"
    if place.ratio is None:
        return text + "; how much the reference scans differ from one another there is not known"
    return (text + f"; {place.spread_of}, deviate at most {max(place.normal_spread):.3g} there, so the query "
            f"deviates {place.ratio:.1f} times as much as the references differ from one another there")


def describe(region: dict) -> str:
    """Where a region is, in its modality's terms: a time window, a 3-D location or an image box."""
    if region.get("kind") == "series_window":
        return _window_text(region)
    if region.get("centre") is not None or region.get("center") is not None:
        return _location_3d_text(region)
    return _box_text(region)


def _box_text(region: dict) -> str:
    text = region.get("where") or "a region"
    box = region.get("box")
    if box:
        text += f": x {box[0]:.2f}–{box[2]:.2f}, y {box[1]:.2f}–{box[3]:.2f} of the image"
    if region.get("area") is not None:
        text += f" ({region['area']:.1%} of it)"
    return text + (f", peak {region['peak']:.2f}" if region.get("peak") is not None else "")


def _window_text(window: dict) -> str:
    text = window.get("where") or f"rows {window.get('start_row')} to {window.get('end_row')}"
    if window.get("peak_value") is not None and window.get("expected_low") is not None:
        text += (f": peak {window['peak_value']:.4g} (row {window.get('peak_row')}) where "
                 f"{window['expected_low']:.4g} to {window['expected_high']:.4g} was expected")
    return text + (f", score {window['score']:.2f}" if window.get("score") is not None else "")


def _location_3d_text(region: dict) -> str:
    centre = region.get("centre") if region.get("centre") is not None else region.get("center")
    text = f"{region.get('kind') or 'deviation'} at {region.get('where') or 'the scan'}"
    text += ": centre (" + ", ".join(f"{v:.3g}" for v in centre) + ")"
    extent = region.get("extent")
    if extent is not None and any(float(v) > 0 for v in extent):
        text += ", extent " + " × ".join(f"{v:.3g}" for v in extent)
    elif extent is not None:
        text += ", a single spot (no extent)"
    depth = region.get("depth")
    if depth:
        text += f", {abs(depth):.3g} {'deep' if depth < 0 else 'high'}"
    text += " (in the scan's units)"
    return text + (f", peak {region['peak']:.2f}" if region.get("peak") is not None else "")


def place_words(text: str) -> set[str]:
    """The parts of an object a text names ('centre', 'upper', 'edge', ...)."""
    words = set(re.findall(r"[a-z]+", (text or "").lower()))
    return {part for part, names in PLACE_WORDS.items() if words & set(names)}


def rules_for_place(rules, region: dict) -> tuple[list, list]:
    """(rules whose words name this place, rules that name no place and so concern the whole part);
    rules that name only other places are left out."""
    here = place_words(region.get("where", "")) if region.get("kind") != "series_window" else set()
    named, whole = [], []
    for rule in rules or []:
        parts = place_words(rule.text)
        if not parts:
            whole.append(rule)
        elif parts & here:
            named.append(rule)
    return named, whole
