"""Labelled evaluation sets read from the public data set layouts (see FACTS.md, "Data formats").

Every loader returns an `EvalSet`: the test items (anomaly = positive class) and, per class, the
pool reference normals may come from. That pool is the normal training data (train/good) and
never the test split; layouts without a training split (a plain folder, the simple VisA sample
layout) use leave-one-out over their normals, so an item is never its own reference.
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tools.errors import InputError
from tools.vocabulary import class_key

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
NORMAL_DIRS = ("good", "normal", "ok")
ANOMALY_DIRS = ("bad", "anomaly", "anomalous", "defect", "defective", "ng")


@dataclass(frozen=True)
class Item:
    """One labelled test sample."""

    id: str  # path relative to the data set root with '/' separators: stable across runs and machines
    class_name: str
    path: Path
    anomalous: bool
    defect: str = "good"  # the defect folder or kind ("good" for normals)
    mask: Path | None = None  # ground-truth mask (a file, or a folder of masks for MVTec LOCO)
    windows: tuple = ()  # series only: labelled anomaly windows ((start, end), ...)


@dataclass
class EvalSet:
    """The items of one data set and where their reference normals may come from."""

    root: Path
    format: str
    modality: str  # image | point_cloud | series
    items: list[Item]
    train_normals: dict[str, list[Path]] = field(default_factory=dict)
    leave_one_out: bool = False  # no training split: references are the other normals of the class
    notes: list[str] = field(default_factory=list)

    @property
    def classes(self) -> list[str]:
        return sorted({item.class_name for item in self.items})

    def reference_pool(self, item: Item) -> list[Path]:
        """Normal samples this item may be compared with; never the item itself."""
        if self.leave_one_out:
            return [i.path for i in self.items
                    if i.class_name == item.class_name and not i.anomalous and i.path != item.path]
        return [p for p in self.train_normals.get(item.class_name, []) if p != item.path]

    def class_pool(self, class_name: str) -> list[Path]:
        """Every file a reference of this class may be drawn from (the union of its items' pools), sorted."""
        if self.leave_one_out:
            return sorted({i.path for i in self.items if i.class_name == class_name and not i.anomalous})
        return sorted(self.train_normals.get(class_name, []))

    def relative(self, path: Path) -> str:
        """A path as an id relative to the root (for results files)."""
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.as_posix()


Loader = Callable[[Path], EvalSet]
LOADERS: dict[str, Loader] = {}


def loader(name: str):
    """Register a loader for `--format name`."""
    def register(function: Loader) -> Loader:
        LOADERS[name] = function
        return function
    return register


def load_dataset(root, fmt: str, classes=None, *, limit: int | None = None, seed: int = 0) -> EvalSet:
    """Read a data set; InputError (exit 2) when the folder, the format or a class is wrong."""
    import assistant.evaluation.nab  # noqa: F401 - registers the series loader (it imports this module)

    if fmt not in LOADERS:
        raise InputError(f"unknown format {fmt!r}; choose one of: {', '.join(sorted(LOADERS))}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise InputError(f"data set folder {root} does not exist; give the folder that holds the data set")
    dataset = LOADERS[fmt](root.resolve())
    if classes:
        dataset = _only_classes(dataset, classes)
    if not dataset.items:
        raise InputError(f"no test items found in {root} for format {fmt!r}; check the layout (see --help)")
    if limit:
        dataset.items = subsample(dataset.items, limit, seed)
        dataset.notes.append(f"At most {limit} test items per class, drawn with seed {seed} and stratified: each class "
                             "keeps its share of anomalies (at least one item of each label it has).")
    return dataset


def _only_classes(dataset: EvalSet, classes) -> EvalSet:
    wanted = {class_key(c) for c in classes}
    unknown = sorted(wanted - {class_key(c) for c in dataset.classes})
    if unknown:
        raise InputError(f"class(es) {unknown} not in the data set; it has: {', '.join(dataset.classes)}")
    dataset.items = [i for i in dataset.items if class_key(i.class_name) in wanted]
    return dataset


def subsample(items: list[Item], limit: int, seed: int) -> list[Item]:
    """At most `limit` items per class, seeded and stratified: each class keeps its share of anomalies, so
    the anomaly rate (and with it AUPR) stays that of the full set; see stratified_counts."""
    chosen: list[Item] = []
    for name in sorted({i.class_name for i in items}):
        rng = random.Random(f"{seed}:{name}")
        groups = [sorted((i for i in items if i.class_name == name and i.anomalous == a), key=lambda i: i.id)
                  for a in (True, False)]
        picked: list[Item] = []
        for group, count in zip(groups, stratified_counts(len(groups[0]), len(groups[1]), limit), strict=True):
            rng.shuffle(group)
            picked += group[:count]
        chosen += sorted(picked, key=lambda i: i.id)
    return chosen


def stratified_counts(anomalous: int, normal: int, limit: int) -> tuple[int, int]:
    """How many anomalous and normal items a class of this make-up keeps under `limit`: its share of
    anomalies rounded half up; a label the class has keeps at least one item when limit >= 2 (AUROC needs both)."""
    if anomalous + normal <= limit:
        return anomalous, normal
    keep = math.floor(limit * anomalous / (anomalous + normal) + 0.5)
    if anomalous and normal and limit >= 2:
        keep = min(max(keep, 1), limit - 1)
    return keep, limit - keep


def files_in(folder: Path, suffixes=IMAGE_SUFFIXES) -> list[Path]:
    """Sample files in a folder, sorted by name; mask files (*_mask.*) are not samples."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in suffixes and not p.stem.lower().endswith("_mask"))


def _class_dirs(root: Path, has_layout: Callable[[Path], bool]) -> list[Path]:
    """The class folders: the root itself when it is one class, else its sub-folders with the layout."""
    if has_layout(root):
        return [root]
    return sorted(d for d in root.iterdir() if d.is_dir() and has_layout(d))


# ---- MVTec AD, MVTec LOCO, MVTec 3D-AD ---------------------------------------------------------
def _mvtec_like(root: Path, fmt: str, sample_dir: str | None, mask_of: Callable, suffixes, modality: str) -> EvalSet:
    dataset = EvalSet(root, fmt, modality, [])
    for class_dir in _class_dirs(root, lambda d: (d / "train" / "good").is_dir() and (d / "test").is_dir()):
        name = class_dir.name
        dataset.train_normals[name] = files_in(_samples(class_dir / "train" / "good", sample_dir), suffixes)
        for defect_dir in sorted(d for d in (class_dir / "test").iterdir() if d.is_dir()):
            for path in files_in(_samples(defect_dir, sample_dir), suffixes):
                defect = defect_dir.name
                dataset.items.append(Item(dataset.relative(path), name, path, defect != "good", defect,
                                          None if defect == "good" else mask_of(class_dir, defect, path)))
    return dataset


def _samples(folder: Path, sample_dir: str | None) -> Path:
    return folder / sample_dir if sample_dir else folder


def _existing(path: Path) -> Path | None:
    return path if path.exists() else None


@loader("mvtec")
def load_mvtec(root: Path) -> EvalSet:
    """MVTec AD: <class>/train/good, <class>/test/<defect|good>, <class>/ground_truth/<defect>/*_mask.png."""
    return _mvtec_like(root, "mvtec", None, lambda c, d, p: _existing(c / "ground_truth" / d / f"{p.stem}_mask.png"),
                       IMAGE_SUFFIXES, "image")


@loader("loco")
def load_loco(root: Path) -> EvalSet:
    """MVTec LOCO: test/{good,logical_anomalies,structural_anomalies}; masks in ground_truth/<kind>/<stem>/."""
    dataset = _mvtec_like(root, "loco", None, lambda c, d, p: _existing(c / "ground_truth" / d / p.stem),
                          IMAGE_SUFFIXES, "image")
    dataset.notes.append("MVTec LOCO: logical and structural anomalies are both positives; per-kind detection "
                         "rates are listed under 'by defect'.")
    return dataset


@loader("mvtec3d")
def load_mvtec3d(root: Path) -> EvalSet:
    """MVTec 3D-AD: the xyz/*.tiff point clouds of train/good and test/<defect>; masks in test/<defect>/gt."""
    dataset = _mvtec_like(root, "mvtec3d", "xyz", lambda c, d, p: _existing(c / "test" / d / "gt" / f"{p.stem}.png"),
                          {".tiff", ".tif"}, "point_cloud")
    dataset.notes.append("MVTec 3D-AD: the xyz point clouds are rendered to depth images (tools.render.views) for the "
                         "model; references are rendered the same way.")
    return dataset


# ---- VisA and plain folders ---------------------------------------------------------------------
@loader("visa")
def load_visa(root: Path) -> EvalSet:
    """VisA: split_csv/1cls.csv (object, split, label, image, mask); else <class>/{normal,anomaly}/."""
    table = root / "split_csv" / "1cls.csv"
    if not table.is_file():
        dataset = load_folder(root)
        dataset.format = "visa"
        return dataset
    dataset = EvalSet(root, "visa", "image", [])
    with table.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            _visa_row(dataset, root, row)
    for pool in dataset.train_normals.values():
        pool.sort()
    dataset.items.sort(key=lambda i: (i.class_name, i.id))
    return dataset


def _visa_row(dataset: EvalSet, root: Path, row: dict) -> None:
    path = root / row["image"].strip()
    name, anomalous = row["object"].strip(), row["label"].strip().lower() == "anomaly"
    if row["split"].strip().lower() == "train":
        if not anomalous:
            dataset.train_normals.setdefault(name, []).append(path)
        return
    mask = root / row["mask"].strip() if (row.get("mask") or "").strip() else None
    dataset.items.append(Item(dataset.relative(path), name, path, anomalous, "anomaly" if anomalous else "good", mask))


def _label_dirs(folder: Path) -> tuple[list[Path], list[Path]]:
    subdirs = [d for d in folder.iterdir() if d.is_dir()] if folder.is_dir() else []
    normal = sorted(d for d in subdirs if d.name.lower() in NORMAL_DIRS)
    anomalous = sorted(d for d in subdirs if d.name.lower() in ANOMALY_DIRS)
    return normal, anomalous


@loader("folder")
def load_folder(root: Path) -> EvalSet:
    """<class>/good and <class>/bad (also normal/anomaly), or good/ and bad/ directly: leave-one-out."""
    dataset = EvalSet(root, "folder", "image", [], leave_one_out=True)
    for class_dir in _class_dirs(root, lambda d: all(_label_dirs(d))):
        normal, anomalous = _label_dirs(class_dir)
        for folder in [*normal, *anomalous]:
            bad = folder in anomalous
            for path in files_in(folder):
                mask = next((m for m in folder.glob(f"{path.stem}_mask.*") if m.suffix.lower() in IMAGE_SUFFIXES), None)
                dataset.items.append(Item(dataset.relative(path), class_dir.name, path, bad,
                                          folder.name if bad else "good", mask))
    dataset.notes.append("No training split: each item's references are the other normals of its class "
                         "(leave-one-out), so no item is ever its own reference; a class with a single normal "
                         "leaves that normal without any reference.")
    return dataset
