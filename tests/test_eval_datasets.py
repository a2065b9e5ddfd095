"""Data set loaders, reference choice (training normals only, leave-one-out) and the results cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from assistant.evaluation.cache import ResultCache
from assistant.evaluation.datasets import load_dataset, subsample
from assistant.evaluation.references import ReferencePicker
from tests.helpers.datasets import make_folder, make_mvtec, make_nab
from tools.errors import InputError


@pytest.fixture(scope="module")
def mvtec(tmp_path_factory):
    return make_mvtec(tmp_path_factory.mktemp("mvtec"), classes=("capsule", "pill"), train=3, good=2, bad=2)


def test_mvtec_items_are_the_test_split_with_labels_and_masks(mvtec):
    dataset = load_dataset(mvtec, "mvtec")
    assert dataset.classes == ["capsule", "pill"]
    assert len(dataset.items) == 8
    bad = [i for i in dataset.items if i.anomalous]
    assert {i.defect for i in bad} == {"spot"} and all(i.mask and i.mask.is_file() for i in bad)
    assert all("/test/" in f"/{i.id}" for i in dataset.items)
    assert [p.name for p in dataset.train_normals["capsule"]] == ["000.png", "001.png", "002.png"]


def test_reference_pool_is_train_good_only(mvtec):
    dataset = load_dataset(mvtec, "mvtec")
    for item in dataset.items:
        pool = dataset.reference_pool(item)
        assert pool and all(p.parent.parts[-2:] == ("train", "good") for p in pool)
        assert all(p.parts[-4] == item.class_name for p in pool)


def test_folder_layout_uses_leave_one_out_so_no_item_is_its_own_reference(tmp_path):
    dataset = load_dataset(make_folder(tmp_path, good=3, bad=2), "folder")
    assert dataset.leave_one_out
    for item in dataset.items:
        pool = dataset.reference_pool(item)
        assert item.path not in pool
        assert len(pool) == (2 if not item.anomalous else 3)
        assert all(p.parent.name == "good" for p in pool)


def test_simple_visa_layout_reads_normal_and_anomaly_folders(tmp_path):
    for label in ("normal", "anomaly"):
        Image.new("RGB", (8, 8)).save((tmp_path / "candle" / label).mkdir(parents=True) or tmp_path / "candle" / label / "a.png")
    dataset = load_dataset(tmp_path, "visa")
    assert [(i.class_name, i.anomalous) for i in dataset.items] == [("candle", False), ("candle", True)]
    assert dataset.leave_one_out and dataset.format == "visa"


def test_visa_split_csv_takes_references_from_the_train_rows(tmp_path):
    rows = ["object,split,label,image,mask", "pcb1,train,normal,pcb1/Data/Images/Normal/0.JPG,",
            "pcb1,test,normal,pcb1/Data/Images/Normal/1.JPG,",
            "pcb1,test,anomaly,pcb1/Data/Images/Anomaly/2.JPG,pcb1/Data/Masks/Anomaly/2.png"]
    (tmp_path / "split_csv").mkdir()
    (tmp_path / "split_csv" / "1cls.csv").write_text("\n".join(rows) + "\n")
    dataset = load_dataset(tmp_path, "visa")
    assert [(i.id, i.anomalous) for i in dataset.items] == [("pcb1/Data/Images/Anomaly/2.JPG", True),
                                                           ("pcb1/Data/Images/Normal/1.JPG", False)]
    assert [p.name for p in dataset.reference_pool(dataset.items[0])] == ["0.JPG"]
    assert dataset.items[0].mask.name == "2.png"


def test_loco_has_logical_and_structural_positives(tmp_path):
    for folder in ("train/good", "test/good", "test/logical_anomalies", "test/structural_anomalies"):
        (tmp_path / "box" / folder).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / "box" / folder / "000.png")
    (tmp_path / "box" / "ground_truth" / "logical_anomalies" / "000").mkdir(parents=True)
    dataset = load_dataset(tmp_path, "loco")
    kinds = {i.defect: i.anomalous for i in dataset.items}
    assert kinds == {"good": False, "logical_anomalies": True, "structural_anomalies": True}
    assert next(i for i in dataset.items if i.defect == "logical_anomalies").mask.is_dir()


def test_mvtec3d_items_are_the_xyz_point_clouds(tmp_path):
    for folder in ("train/good/xyz", "test/good/xyz", "test/hole/xyz", "test/hole/gt"):
        (tmp_path / "peach" / folder).mkdir(parents=True)
    for folder in ("train/good/xyz", "test/good/xyz", "test/hole/xyz"):
        (tmp_path / "peach" / folder / "000.tiff").write_bytes(b"")
    (tmp_path / "peach" / "test" / "hole" / "gt" / "000.png").write_bytes(b"")
    dataset = load_dataset(tmp_path, "mvtec3d")
    assert dataset.modality == "point_cloud"
    assert sorted(i.id for i in dataset.items) == ["peach/test/good/xyz/000.tiff", "peach/test/hole/xyz/000.tiff"]
    assert dataset.train_normals["peach"][0].suffix == ".tiff"


def test_nab_items_are_series_labelled_by_their_windows(tmp_path):
    dataset = load_dataset(make_nab(tmp_path, normal=2, spiky=1), "nab")
    assert dataset.modality == "series" and dataset.classes == ["machine"]
    assert [i.anomalous for i in dataset.items] == [False, False, True]
    assert len(dataset.items[2].windows) == 1


@pytest.mark.parametrize("folder, fmt, message", [("missing", "mvtec", "does not exist"),
                                                  (".", "imagenet", "unknown format")])
def test_bad_input_is_an_input_error_with_one_line(tmp_path, folder, fmt, message):
    with pytest.raises(InputError, match=message) as caught:
        load_dataset(tmp_path / folder, fmt)
    assert "\n" not in str(caught.value)


def test_unknown_class_is_refused_naming_the_known_ones(mvtec):
    with pytest.raises(InputError, match="capsule, pill"):
        load_dataset(mvtec, "mvtec", ["screw"])


def test_limit_is_seeded_per_class_and_keeps_both_labels(mvtec):
    items = load_dataset(mvtec, "mvtec").items
    first, again = subsample(items, 2, seed=3), subsample(items, 2, seed=3)
    assert first == again and len(first) == 4
    for name in ("capsule", "pill"):
        assert {i.anomalous for i in first if i.class_name == name} == {True, False}


def _items(name, anomalous, normal):
    from assistant.evaluation.datasets import Item

    return ([Item(f"{name}/bad/{i:02d}.png", name, Path(f"{name}/bad/{i:02d}.png"), True, "spot") for i in range(anomalous)]
            + [Item(f"{name}/good/{i:02d}.png", name, Path(f"{name}/good/{i:02d}.png"), False) for i in range(normal)])


def test_limit_keeps_each_class_share_of_anomalies():
    items = _items("bottle", 12, 4) + _items("cable", 3, 9)
    chosen = subsample(items, 8, seed=0)
    counts = {(n, a): sum(i.class_name == n and i.anomalous == a for i in chosen)
              for n in ("bottle", "cable") for a in (True, False)}
    # 75 % anomalies stay 75 % (6 of 8), 25 % stay 25 % (2 of 8): not balanced 4 + 4
    assert counts == {("bottle", True): 6, ("bottle", False): 2, ("cable", True): 2, ("cable", False): 6}


def test_limit_keeps_one_item_of_each_label_a_class_has():
    chosen = subsample(_items("bottle", 20, 1), 4, seed=1)
    assert sorted(i.anomalous for i in chosen) == [False, True, True, True]
    assert len(subsample(_items("bottle", 3, 2), 10, seed=1)) == 5  # a class smaller than the limit is kept whole


def _open_view(path, class_name):
    return Image.open(path).convert("RGB")


def test_first_choice_takes_the_first_k_training_normals_by_name(mvtec):
    dataset = load_dataset(mvtec, "mvtec")
    picker = ReferencePicker(dataset, 2, "first", view=_open_view)
    assert [p.name for p in picker.pick(dataset.items[0])] == ["000.png", "001.png"]


def test_nearest_choice_takes_the_most_similar_training_normal(tmp_path):
    make_mvtec(tmp_path, classes=("capsule",), train=2, good=1, bad=0)
    train = tmp_path / "capsule" / "train" / "good"
    query = Image.open(tmp_path / "capsule" / "test" / "good" / "000.png")
    query.save(train / "zzz_copy_of_query.png")  # last by name, but identical to the query
    dataset = load_dataset(tmp_path, "mvtec")
    picker = ReferencePicker(dataset, 1, "nearest", view=_open_view)
    assert [p.name for p in picker.pick(dataset.items[0])] == ["zzz_copy_of_query.png"]


def test_cache_ignores_a_torn_last_line_and_appends_on_a_fresh_line(tmp_path):
    path = tmp_path / "results.jsonl"
    cache = ResultCache(path)
    cache.append({"key": "a", "value": 1})
    with path.open("a") as handle:
        handle.write('{"key": "b", "val')  # what a kill in mid-write leaves
    reopened = ResultCache(path)
    assert "a" in reopened and "b" not in reopened and reopened.ignored_lines == 1
    reopened.append({"key": "b", "value": 2})
    assert ResultCache(path).records() == [{"key": "a", "value": 1}, {"key": "b", "value": 2}]
    assert json.loads(path.read_text().splitlines()[-1]) == {"key": "b", "value": 2}
