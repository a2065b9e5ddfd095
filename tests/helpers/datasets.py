"""Tiny labelled data sets on disk, in the public layouts the evaluation reads.

`make_mvtec` writes an MVTec AD tree (train/good, test/good, test/<defect>, ground_truth masks) of
small synthetic parts; `make_folder` the plain good/bad layout; `make_nab` NAB-format series with a
spike and its labelled window. Every image is distinct (own jitter seed), so a test can tell from
the pixels which file a model request carried: `ImageBook` finds the file again from an image in a
Chat Completions request, and `OracleModel` is a scripted model for the fake OpenAI server that
answers each analysis truthfully (anomalous, confidence 0.9, for a defective file; normal, 0.1,
for a good one; text that is not JSON for files marked unreadable) and records what it was sent.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from tests.helpers.defects import add_defect, jitter, textured_part
from tests.helpers.fake_http import RecordedRequest, Reply
from tests.helpers.fake_openai import Completion

IMAGE_SIZE = 96


def _save(image: Image.Image, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def make_mvtec(root: Path, classes=("capsule",), *, train: int = 3, good: int = 2, bad: int = 2,
               defect: str = "spot", size: int = IMAGE_SIZE) -> Path:
    """An MVTec AD tree under root; returns root."""
    for c, name in enumerate(classes):
        base = textured_part(size=size, seed=c)
        seed = 1000 * (c + 1)
        for i in range(train):
            _save(jitter(base, seed=seed + i), root / name / "train" / "good" / f"{i:03d}.png")
        for i in range(good):
            _save(jitter(base, seed=seed + 100 + i), root / name / "test" / "good" / f"{i:03d}.png")
        for i in range(bad):
            image, mask = add_defect(jitter(base, seed=seed + 200 + i), defect, seed=i, scale=2.0)
            _save(image, root / name / "test" / defect / f"{i:03d}.png")
            _save(Image.fromarray(mask.astype(np.uint8) * 255), root / name / "ground_truth" / defect / f"{i:03d}_mask.png")
    return root


def make_folder(root: Path, name: str = "capsule", *, good: int = 3, bad: int = 2, size: int = IMAGE_SIZE) -> Path:
    """<root>/<name>/good and <root>/<name>/bad (no training split); returns root."""
    base = textured_part(size=size, seed=7)
    for i in range(good):
        _save(jitter(base, seed=700 + i), root / name / "good" / f"g{i}.png")
    for i in range(bad):
        _save(add_defect(jitter(base, seed=800 + i), "spot", seed=i, scale=2.0)[0], root / name / "bad" / f"b{i}.png")
    return root


def make_mvtec3d(root: Path, name: str = "dome", *, train: int = 3, good: int = 2, bad: int = 2,
                 shape: tuple[int, int] = (96, 96), depth: float = 3.0) -> Path:
    """An MVTec 3D-AD tree of simulated organised scans (tests/helpers/scans.py): <name>/train/good/xyz/*.tiff,
    <name>/test/{good,dent}/xyz/*.tiff and test/dent/gt/*.png masks in the sensor grid; returns root."""
    import tifffile

    from tests.helpers import scans

    base, _ = scans.object_mesh("sphere")

    def write(scan, folder: Path, index: int) -> None:
        (folder / "xyz").mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(folder / "xyz" / f"{index:03d}.tiff", scan.points)
        if scan.defect is not None:
            _save(Image.fromarray(scan.defect_mask.astype(np.uint8) * 255), folder / "gt" / f"{index:03d}.png")

    for i in range(train):
        write(scans.station_scan(base, None, seed=10 + i, shape=shape), root / name / "train" / "good", i)
    for i in range(good):
        write(scans.station_scan(base, None, seed=100 + i, shape=shape), root / name / "test" / "good", i)
    for i in range(bad):
        mesh, defect = scans.object_mesh("sphere", "dent", seed=200 + i, depth=depth, facing=np.array([0, 0, 1.0]))
        write(scans.station_scan(mesh, defect, seed=300 + i, shape=shape), root / name / "test" / "dent", i)
    return root


def series_values(rows: int, seed: int, spike_at: int | None = None) -> np.ndarray:
    """A daily-looking sine with noise, and a tall spike at `spike_at` when given."""
    rng = np.random.default_rng(seed)
    values = 50 + 10 * np.sin(np.arange(rows) * 2 * np.pi / 48) + rng.normal(0, 0.5, rows)
    if spike_at is not None:
        values[spike_at:spike_at + 3] += 80
    return values


def make_nab(root: Path, *, rows: int = 240, normal: int = 2, spiky: int = 2, group: str = "machine") -> Path:
    """NAB layout: data/<group>/*.csv (timestamp,value) and labels/combined_windows.json; returns root."""
    import pandas as pd

    times = pd.date_range("2024-01-01", periods=rows, freq="5min")
    windows = {}
    for i in range(normal + spiky):
        spike = 120 + 20 * i if i >= normal else None
        name = f"{'spike' if spike is not None else 'calm'}_{i}.csv"
        path = root / "data" / group / name
        path.parent.mkdir(parents=True, exist_ok=True)
        frame = pd.DataFrame({"timestamp": times.strftime("%Y-%m-%d %H:%M:%S"), "value": series_values(rows, i, spike)})
        frame.to_csv(path, index=False)
        windows[f"{group}/{name}"] = ([] if spike is None else
                                      [[str(times[spike - 5]), str(times[min(rows - 1, spike + 8)])]])
    (root / "labels").mkdir(parents=True, exist_ok=True)
    (root / "labels" / "combined_windows.json").write_text(json.dumps(windows, indent=1))
    return root



def pixel_key(image: Image.Image) -> str:
    rgb = image.convert("RGB")
    return hashlib.sha256(np.asarray(rgb).tobytes() + repr(rgb.size).encode()).hexdigest()


class ImageBook:
    """Image files under a root, found again from the pixels of an image sent to a model.

    The session scales every image to `long_side` (Settings.image_long_side) before sending it,
    so the files are indexed as they look after that same scaling.
    """

    def __init__(self, root: Path, long_side: int = 768):
        from tools.render.imageops import fit_long_side

        self.root = Path(root)
        self.by_pixels = {}
        for path in sorted(self.root.rglob("*.png")):
            if not path.stem.endswith("_mask"):
                with Image.open(path) as image:
                    sent = fit_long_side(image.convert("RGB"), long_side)
                self.by_pixels[pixel_key(sent)] = path.relative_to(self.root).as_posix()

    def identify(self, data_url: str) -> str | None:
        data = base64.b64decode(data_url.split(",", 1)[1])
        with Image.open(io.BytesIO(data)) as image:
            return self.by_pixels.get(pixel_key(image))


def request_images(request: RecordedRequest) -> dict[str, str]:
    """{caption label: data URL} of the images in a request's user messages ('query', 'reference 1', ...)."""
    found, label = {}, None
    for message in (request.body or {}).get("messages", []):
        content = message.get("content")
        for part in content if isinstance(content, list) else []:
            if part.get("type") == "text" and part["text"].startswith("[image: "):
                label = part["text"][len("[image: "):-1]
            elif part.get("type") == "image_url" and label:
                found.setdefault(label, part["image_url"]["url"])
                label = None
    return found


class OracleModel:
    """The fake server's answer to every request: the truth about the query, from its file name."""

    def __init__(self, book: ImageBook, unreadable: set[str] = frozenset()):
        self.book, self.unreadable = book, set(unreadable)
        self.seen: list[dict] = []  # per request: {"query": file, "references": [files]}
        self._lock = threading.Lock()

    def __call__(self, request: RecordedRequest) -> Reply:
        images = request_images(request)
        query = self.book.identify(images["query"]) if "query" in images else None
        refs = [self.book.identify(url) for label, url in sorted(images.items()) if label.startswith("reference")]
        with self._lock:
            self.seen.append({"query": query, "references": refs})
        if query is None or query in self.unreadable:
            return Completion(["I would rather not say."]).render(request)
        anomalous = "/good/" not in f"/{query}"  # test/good (MVTec) or good/ (folder layout)
        answer = {"reasoning": f"checked {query}", "anomalous": anomalous, "confidence": 0.9 if anomalous else 0.1,
                  "defect_type": "spot" if anomalous else "none", "location": {"box": None, "where": ""},
                  "rules_used": []}
        return Completion([json.dumps(answer)]).render(request)
