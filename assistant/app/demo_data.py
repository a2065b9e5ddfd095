"""Demo parts the project draws itself (no third-party pictures): a machined mounting bracket photographed
a few times as normal references, a good one and a scratched one to inspect, and a pump's
vibration sensor series with and without a fault. Written once into `<home>/demo/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

DEMO_CLASS = "demo bracket"
VERSION = "v2"
SIZE = 384


@dataclass(frozen=True)
class DemoFiles:
    references: list[Path]
    good: Path
    defective: Path
    series_normal: Path
    series_fault: Path


def _bracket(rng: np.random.Generator) -> Image.Image:
    """A brushed steel mounting plate with four corner holes and a centre bore, on a dark blue mat."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    image = np.zeros((SIZE, SIZE, 3), np.float32) + np.array([28, 36, 52], np.float32)
    image += rng.normal(0, 3, (SIZE, SIZE, 1))
    plate = (np.abs(xx - 0.5) < 0.34) & (np.abs(yy - 0.5) < 0.27)
    brushed = np.cumsum(rng.normal(0, 1, (SIZE, SIZE)), axis=1) / 25 + 6 * np.sin(yy * 240)
    shade = 145 + 45 * (1 - yy) + 15 * xx + brushed
    image[plate] = np.stack([shade, shade + 4, shade + 10], axis=-1)[plate]
    picture = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    draw.rectangle((0.16 * SIZE, 0.23 * SIZE, 0.84 * SIZE, 0.77 * SIZE), outline=(225, 228, 235), width=2)
    for cx, cy in ((0.24, 0.31), (0.76, 0.31), (0.24, 0.69), (0.76, 0.69)):
        r = 0.03 * SIZE
        draw.ellipse((cx * SIZE - r, cy * SIZE - r, cx * SIZE + r, cy * SIZE + r), fill=(22, 26, 36),
                     outline=(120, 124, 132), width=2)
    for r, fill in ((0.11, (118, 122, 130)), (0.085, (200, 204, 212)), (0.06, (22, 26, 36))):
        draw.ellipse(((0.5 - r) * SIZE, (0.5 - r) * SIZE, (0.5 + r) * SIZE, (0.5 + r) * SIZE), fill=fill)
    return picture


def _photograph(seed: int) -> Image.Image:
    """The bracket photographed again: slightly moved, turned and lit differently."""
    rng = np.random.default_rng(seed)
    picture = _bracket(np.random.default_rng(7))
    picture = picture.rotate(rng.uniform(-1.2, 1.2), Image.BILINEAR, translate=tuple(rng.uniform(-3, 3, 2)),
                             fillcolor=(28, 36, 52))
    picture = ImageEnhance.Brightness(picture).enhance(1 + rng.uniform(-0.04, 0.04))
    noisy = np.asarray(picture, np.float32) + rng.normal(0, 1.5, (SIZE, SIZE, 1))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def _scratched(picture: Image.Image) -> Image.Image:
    """A dark gouge right of the bore, and a rust spot below it."""
    marked = picture.copy()
    draw = ImageDraw.Draw(marked)
    draw.line([(0.6 * SIZE, 0.36 * SIZE), (0.72 * SIZE, 0.5 * SIZE)], fill=(74, 66, 60), width=4)
    draw.ellipse((0.64 * SIZE, 0.6 * SIZE, 0.69 * SIZE, 0.65 * SIZE), fill=(150, 82, 40))
    return marked.filter(ImageFilter.SMOOTH)


def _vibration(seed: int, fault: bool) -> str:
    """A pump's vibration in mm/s at 1 Hz for 10 minutes; the fault is a burst after minute 6."""
    rng = np.random.default_rng(seed)
    t = np.arange(600)
    value = 2.0 + 0.3 * np.sin(2 * np.pi * t / 60) + rng.normal(0, 0.05, t.size)
    if fault:
        value[380:420] += 1.6 * np.hanning(40) + rng.normal(0, 0.2, 40)
    stamps = np.datetime64("2026-01-05T08:00:00") + t.astype("timedelta64[s]")
    return "timestamp,value\n" + "".join(f"{s},{v:.4f}\n" for s, v in zip(stamps, value, strict=True))


def ensure_demo_data(home: Path) -> DemoFiles:
    """Write the demo files under `<home>/demo/<version>` unless they are there already."""
    folder = Path(home) / "demo" / VERSION
    files = DemoFiles(references=[folder / f"bracket_normal_{i}.png" for i in (1, 2, 3)],
                      good=folder / "bracket_good.png", defective=folder / "bracket_scratched.png",
                      series_normal=folder / "pump_normal.csv", series_fault=folder / "pump_fault.csv")
    if (folder / "complete").exists():
        return files
    folder.mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(files.references, 1):
        _photograph(seed=i).save(path)
    _photograph(seed=11).save(files.good)
    _scratched(_photograph(seed=12)).save(files.defective)
    files.series_normal.write_text(_vibration(1, fault=False), encoding="utf-8")
    files.series_fault.write_text(_vibration(2, fault=True), encoding="utf-8")
    (folder / "complete").write_text("ok\n", encoding="utf-8")
    return files


EXAMPLE_LABELS = ["Scratched bracket", "Good bracket", "Pump vibration", "Teach a rule"]


def examples(files: DemoFiles) -> list[list]:
    """Example messages for the chat: [message, class] rows for gr.Examples."""
    refs = [str(p) for p in files.references[:2]]
    return [
        [{"text": "Is anything wrong with this bracket? (the other pictures are normal ones)",
          "files": [str(files.defective), *refs]}, DEMO_CLASS],
        [{"text": "Is this bracket OK?", "files": [str(files.good), *refs]}, DEMO_CLASS],
        [{"text": "Any abnormal behaviour in this pump's vibration?", "files": [str(files.series_fault)]}, ""],
        [{"text": "rule for demo bracket: a normal bracket has four open corner holes, one centre bore and no scratches or rust", "files": []}, ""],
    ]
