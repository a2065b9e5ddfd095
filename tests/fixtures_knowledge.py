"""Fixtures for the knowledge layer: a knowledge base per test, embedded or on a real Chroma server.

The server is one `chroma run` per test session on a free loopback port; every test gets its own
database on it (named in the URL), so tests never see each other's data.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers.chroma_server import free_port, start_chroma


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory):
    """Base URL of a real `chroma run` server on loopback, stopped at the end of the session."""
    folder = tmp_path_factory.mktemp("chroma_server")
    port = free_port()
    process = start_chroma(folder, port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(params=["embedded", "server"])
def kb_location(request, tmp_path):
    """(directory, chroma_url) of a fresh knowledge base: embedded, or a private database on the server."""
    if request.param == "embedded":
        return tmp_path / "kb", None
    base = request.getfixturevalue("chroma_server")
    return tmp_path / "kb", f"{base}/?database=t{uuid.uuid4().hex[:16]}"


@pytest.fixture
def open_kb(kb_location):
    """A function that opens (again) the test's knowledge base."""
    from knowledge.store import KnowledgeBase

    opened = []

    def opener(**kwargs):
        path, url = kb_location
        kb = KnowledgeBase.open(path, chroma_url=url, **kwargs)
        opened.append(kb)
        return kb

    yield opener
    for kb in opened:
        kb.close()


@pytest.fixture
def kb(open_kb):
    """A fresh, seeded knowledge base (embedded and server variants)."""
    return open_kb()


def make_image(seed: int, size: tuple[int, int] = (64, 64), base: tuple[int, int, int] | None = None) -> Image.Image:
    """A small synthetic RGB image: a smooth colour field with a seeded pattern of blobs."""
    rng = np.random.default_rng(seed)
    height, width = size[1], size[0]
    colour = np.array(base if base is not None else rng.integers(40, 215, 3), dtype=np.float32)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    field = np.zeros((height, width), np.float32)
    for _ in range(4):
        cy, cx, r = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(4, width / 3)
        field += np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * r * r))
    pixels = colour[None, None, :] * (0.6 + 0.4 * field[..., None] / max(field.max(), 1e-6))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def save_image(image: Image.Image, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


@pytest.fixture
def image_file(tmp_path):
    """A function that writes make_image(seed) to a PNG and returns its path."""

    def writer(seed: int, name: str | None = None, **kwargs) -> Path:
        return save_image(make_image(seed, **kwargs), tmp_path / "images" / (name or f"sample{seed}.png"))

    return writer
