"""A video compared frame by frame: each frame the grid shows against the reference videos' frames.

Comparing the frame grids as two pictures calibrates badly: a jittered copy of a whole grid moves
every tile border and time label, so the threshold rises above what an odd frame reaches (a large red
blob in one frame scored 0.27 against one reference clip). Here the vision expert is fitted on the
reference clips' shown frames (up to MAX_REFERENCE_FRAMES, spread over the clips), with free matching
unless the class says otherwise (tools/agent/evidence.py: a part moves between frames); each shown
query frame is scored, and the frames' heatmaps are put back into the grid's tiles, so regions, crops and boxes
refer to the grid people and models see.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from PIL import Image

from tools.experts.vision.expert import ExpertReport, VisionExpert
from tools.experts.vision.regions import describe_place, find_regions
from tools.render.video import shown_frames, tile_boxes

MAX_REFERENCE_FRAMES = 16  # frames the expert is fitted on: its time grows with each


def frames_of(artifact) -> list[tuple[float, Image.Image]]:
    """(time, frame) of the frames a video's grid shows."""
    return shown_frames(artifact.payload, artifact.extra.get("changes"))


def compare_video(query, references: list, expert_options: dict) -> ExpertReport:
    """The vision expert's report on a video's frame grid, frame against reference frames.

    query and references are loaded video Artifacts; expert_options as for VisionExpert (cache_dir,
    rotation_invariant, matching)."""
    shown = frames_of(query)
    pool = _reference_frames([frames_of(r) for r in references])
    expert = VisionExpert(**expert_options).fit([frame for frame, _ in pool])
    reports = [expert.score(frame) for _, frame in shown]
    size, boxes = tile_boxes(len(shown), shown[0][1].size)
    heatmap = np.zeros((size[1], size[0]), np.float32)
    for report, (x0, y0, x1, y1) in zip(reports, boxes, strict=True):
        tile = Image.fromarray(report.heatmap).resize((x1 - x0, y1 - y0), Image.Resampling.BILINEAR)
        heatmap[y0:y1, x0:x1] = np.asarray(tile, np.float32)
    worst = int(np.argmax([r.score for r in reports]))
    top = reports[worst]
    regions = [replace(r, where=_in_frame(r.box, boxes, shown, size)) for r in find_regions(heatmap)]
    method = f"{expert.describe()}, frame by frame ({len(shown)} frames against {len(pool)} reference frames)"
    return ExpertReport(top.score, top.raw_score, top.threshold, top.anomalous, heatmap, regions,
                        pool[top.nearest_reference][1], method, list(top.notes))


def _reference_frames(clips: list[list[tuple[float, Image.Image]]]) -> list[tuple[Image.Image, int]]:
    """(frame, index of its clip), at most MAX_REFERENCE_FRAMES, taken evenly from each clip."""
    share = max(1, MAX_REFERENCE_FRAMES // max(1, len(clips)))
    pool = []
    for number, frames in enumerate(clips):
        picked = np.unique(np.linspace(0, len(frames) - 1, min(share, len(frames))).round().astype(int))
        pool += [(frames[i][1], number) for i in picked]
    return pool[:MAX_REFERENCE_FRAMES]


def _in_frame(box, tiles, shown, size) -> str:
    """Where a region of the grid is, in the video's terms: which frame, at what time, and where in it."""
    cx, cy = (box[0] + box[2]) / 2 * size[0], (box[1] + box[3]) / 2 * size[1]
    for number, ((seconds, _), (x0, y0, x1, y1)) in enumerate(zip(shown, tiles, strict=True), 1):
        if x0 <= cx < x1 and y0 <= cy < y1:
            inner = (max(0.0, (box[0] * size[0] - x0) / (x1 - x0)), max(0.0, (box[1] * size[1] - y0) / (y1 - y0)),
                     min(1.0, (box[2] * size[0] - x0) / (x1 - x0)), min(1.0, (box[3] * size[1] - y0) / (y1 - y0)))
            return f"frame {number} (t={seconds:.2f} s), {describe_place(inner)}"
    return describe_place(box)
