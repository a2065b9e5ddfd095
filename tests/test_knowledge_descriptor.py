"""The image descriptor used to compare reference normals."""

from __future__ import annotations

import numpy as np
from PIL import Image

from tests.fixtures_knowledge import make_image
from tools.experts.descriptor import DIMENSIONS, image_descriptor


def cosine(a, b) -> float:
    return float(np.dot(a, b))


def test_descriptor_is_unit_length_float32_of_fixed_size():
    vector = image_descriptor(make_image(1))
    assert vector.dtype == np.float32 and vector.shape == (DIMENSIONS,)
    assert abs(np.linalg.norm(vector) - 1.0) < 1e-5


def test_descriptor_is_deterministic_and_leaves_the_image_alone():
    image = make_image(2)
    before = np.asarray(image).copy()
    assert np.array_equal(image_descriptor(image), image_descriptor(image))
    assert np.array_equal(np.asarray(image), before)


def test_descriptor_hardly_depends_on_image_size():
    small, large = make_image(3, size=(64, 64)), make_image(3, size=(64, 64)).resize((256, 256))
    assert cosine(image_descriptor(small), image_descriptor(large)) > 0.97


def test_a_slightly_changed_image_is_closer_than_another_image():
    base = make_image(4, base=(180, 60, 60))
    noisy = np.asarray(base).astype(np.int16) + np.random.default_rng(0).integers(-8, 9, (64, 64, 3))
    near = image_descriptor(Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)))
    other = image_descriptor(make_image(5, base=(60, 60, 180)))
    reference = image_descriptor(base)
    assert cosine(reference, near) > 0.95 > cosine(reference, other)


def test_layout_matters_for_the_same_colours():
    image = make_image(6)
    flipped = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)  # mirrored left-right: same colours, different layout
    assert cosine(image_descriptor(image), image_descriptor(flipped)) < 0.99


def test_grayscale_and_rgba_images_are_accepted():
    image = make_image(7)
    for mode in ("L", "RGBA", "P"):
        assert image_descriptor(image.convert(mode)).shape == (DIMENSIONS,)


def test_a_flat_image_gives_a_finite_descriptor():
    flat = Image.new("RGB", (32, 32), (128, 128, 128))
    vector = image_descriptor(flat)
    assert np.all(np.isfinite(vector)) and abs(np.linalg.norm(vector) - 1.0) < 1e-5
