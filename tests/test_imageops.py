"""Image operations: fit, zoom, heatmap overlay, labelled side-by-side composite."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tools.errors import InputError
from tools.render.imageops import composite, fit_long_side, overlay_heatmap, zoom


def test_fit_long_side_scales_down_and_up_keeping_aspect():
    assert fit_long_side(Image.new("RGB", (1000, 500))).size == (768, 384)
    assert fit_long_side(Image.new("RGB", (100, 200)), 400).size == (200, 400)


def test_zoom_crops_the_box_and_scales_it_up():
    img = Image.new("RGB", (200, 100), (0, 0, 0))
    img.paste((255, 0, 0), (100, 50, 150, 100))
    zoomed = zoom(img, (0.5, 0.5, 0.75, 1.0), long_side=300)
    pixels = np.asarray(zoomed)
    assert zoomed.size == (300, 300) and (pixels[:, :, 0] > 200).mean() > 0.95


@pytest.mark.parametrize("box", [(0.5, 0.5, 0.4, 0.9), (-0.1, 0, 0.5, 0.5), (0, 0, 1.2, 1), (0, 0, 1)])
def test_zoom_refuses_a_box_outside_the_image(box):
    with pytest.raises(InputError, match="box"):
        zoom(Image.new("RGB", (10, 10)), box)


def test_cold_heatmap_leaves_the_image_as_it_is_and_hot_spot_colours_only_its_place():
    img = Image.new("RGB", (64, 64), (128, 128, 128))
    assert np.array_equal(np.asarray(overlay_heatmap(img, np.zeros((8, 8)))), np.asarray(img))
    heat = np.zeros((64, 64))
    heat[:16, :16] = 1.0
    out = np.asarray(overlay_heatmap(img, heat, alpha=0.5)).astype(int)
    assert np.abs(out[4, 4] - 128).sum() > 60 and np.abs(out[50, 50] - 128).sum() == 0


def test_heatmap_must_be_two_dimensional():
    with pytest.raises(InputError, match="2-D"):
        overlay_heatmap(Image.new("RGB", (8, 8)), np.zeros((8, 8, 3)))


def test_composite_puts_panels_side_by_side_at_one_height_with_labels():
    panels = [("reference", Image.new("RGB", (100, 100), (0, 0, 255))),
              ("query", Image.new("RGB", (200, 100), (0, 255, 0)))]
    sheet = composite(panels, height=100, gap=8)
    assert sheet.width == 100 + 200 + 3 * 8 and sheet.height > 100
    top_band = np.asarray(sheet)[:20]
    assert (top_band < 100).any()  # dark label text above the panels
    with pytest.raises(InputError):
        composite([])
