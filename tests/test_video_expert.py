"""Videos are compared frame by frame with the reference clips' frames; the heatmap lies on the frame grid."""

from __future__ import annotations

import pytest

from assistant.config import load_settings
from assistant.session import Session
from tests.helpers import data
from tools.inputs.artifacts import load
from tools.render.views import to_image


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    return {"ref": data.write_video(root / "ref.mp4", seed=1), "good": data.write_video(root / "good.mp4", seed=2),
            "odd": data.write_video(root / "odd.mp4", seed=3, odd_frame=12)}


def _verdict(tmp_path, query, refs):
    settings = load_settings({"home": str(tmp_path / "home"), "backend": "offline"}, env={})
    from knowledge.store import KnowledgeBase

    session = Session(settings, KnowledgeBase.open(settings.kb_dir))
    events = list(session.send("is anything odd?", [query, *refs], class_name="conveyor"))
    return next(e.verdict for e in events if e.kind == "verdict"), session


def test_an_odd_frame_is_found_in_its_tile_and_a_good_clip_passes(clips, tmp_path):
    odd, session = _verdict(tmp_path, clips["odd"], [clips["ref"]])
    assert odd.anomalous is True and odd.regions
    assert odd.regions[0]["where"].startswith("frame ") and "t=1.00 s" in odd.regions[0]["where"]
    heat = session.ctx.evidence.expert.heatmap
    assert heat.shape[::-1] == to_image(load(clips["odd"])).size  # on the grid the person and the model see
    good, _ = _verdict(tmp_path, clips["good"], [clips["ref"]])
    assert good.anomalous is False and good.score < 0.5


def test_the_frame_grid_and_its_tile_boxes_agree():
    from PIL import Image

    from tools.render.video import frame_grid, tile_boxes

    frames = [(i / 10, Image.new("RGB", (96, 64), (10 * i, 0, 0))) for i in range(5)]
    sheet = frame_grid(frames)
    size, boxes = tile_boxes(5, (96, 64))
    assert sheet.size == size and len(boxes) == 5
    for i, (x0, _y0, x1, y1) in enumerate(boxes):
        assert sheet.getpixel(((x0 + x1) // 2, y1 - 3))[0] == 10 * i  # each tile holds its frame
