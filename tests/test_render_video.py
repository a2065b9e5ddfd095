"""Video frame sheets: frames chosen evenly or at scene changes, tiles labelled with times."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.helpers import data
from tools.inputs.artifacts import load
from tools.render.video import MAX_TILES, choose_frames, frame_grid, render_frames


def _odd_clip(tmp_path, odd=13):
    return load(data.write_video(tmp_path / "clip.mp4", n=30, odd_frame=odd, fps=10))


def test_even_choice_spreads_over_the_video():
    assert choose_frames(list(range(30)), None, count=4, mode="even") == [0, 10, 19, 29]


def test_scene_choice_catches_the_odd_frame(tmp_path):
    clip = _odd_clip(tmp_path)
    chosen = choose_frames([t for t, _ in clip.payload], clip.extra["changes"], count=6, mode="scenes")
    numbers = [clip.extra["frame_numbers"][i] for i in chosen]
    assert 13 in numbers and numbers[0] == 0 and len(numbers) == 6


def test_auto_choice_uses_scenes_only_when_a_change_stands_out(tmp_path):
    clip = _odd_clip(tmp_path)
    changes = clip.extra["changes"]
    with_odd = choose_frames([t for t, _ in clip.payload], changes, count=5)
    assert 13 in [clip.extra["frame_numbers"][i] for i in with_odd]
    steady = [0.0] + [0.01] * 29
    assert choose_frames(list(range(30)), steady, count=4) == [0, 10, 19, 29]


def test_count_is_capped_and_mode_checked():
    assert len(choose_frames(list(range(100)), None, count=40)) == MAX_TILES
    with pytest.raises(ValueError, match="unknown frame choice"):
        choose_frames([0.0, 1.0], None, mode="random")


def test_grid_lays_tiles_in_rows_with_time_labels():
    frames = [(i / 10, Image.new("RGB", (80, 40), (0, 0, 0))) for i in range(5)]
    sheet = frame_grid(frames, tile_width=160)
    assert sheet.size == (3 * 160 + 4 * 4, 2 * 80 + 3 * 4)
    label = np.asarray(sheet)[6:20, 8:60]
    assert (label > 200).any()  # white text on the black tile


def test_render_frames_of_a_gif(tmp_path):
    clip = load(data.write_video(tmp_path / "clip.gif", n=12, odd_frame=5))
    sheet = render_frames(clip.payload, clip.extra["changes"], count=4, tile_width=120)
    assert sheet.mode == "RGB" and sheet.width == 2 * 120 + 3 * 4
