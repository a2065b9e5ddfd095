"""Reference normals: content-addressed files, similarity search, class suggestions."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from tests.fixtures_knowledge import make_image, save_image
from tools.errors import InputError, NotFoundError


def test_reference_file_is_stored_by_content(kb, image_file):
    source = image_file(1)
    sample = kb.add_reference("Metal Nut", source, note="line 3", author="ana")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    assert (sample.class_name, sample.sha256, sample.note, sample.author) == ("metal_nut", digest, "line 3", "ana")
    assert sample.path.name == f"{digest}.png" and sample.path.read_bytes() == source.read_bytes()
    assert sample.path.is_relative_to(kb.path)
    assert [s.id for s in kb.references("metal nut")] == [sample.id]


def test_same_file_twice_is_stored_once(kb, image_file, tmp_path):
    source = image_file(1)
    copy = tmp_path / "copy.png"
    copy.write_bytes(source.read_bytes())
    first = kb.add_reference("widget", source)
    assert kb.add_reference("widget", copy) == first
    assert len(kb.references("widget")) == 1
    assert len(list((kb.path / "files").rglob("*.png"))) == 1


def test_same_file_in_two_classes_shares_one_stored_file(kb, image_file):
    source = image_file(1)
    a, b = kb.add_reference("widget", source), kb.add_reference("gadget", source)
    assert a.id != b.id and a.path == b.path
    kb.delete_reference(a.id)
    assert b.path.is_file()
    kb.delete_reference(b.id)
    assert not b.path.exists()


def test_non_image_reference_is_refused_and_nothing_stored(kb, tmp_path):
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not an image")
    with pytest.raises(InputError, match="not a readable image"):
        kb.add_reference("widget", text_file)
    assert kb.references("widget") == [] and "widget" not in kb.classes()
    assert not (kb.path / "files").exists() or not any((kb.path / "files").rglob("*"))


def test_missing_reference_file_is_refused(kb, tmp_path):
    with pytest.raises(InputError, match="not a file"):
        kb.add_reference("widget", tmp_path / "missing.png")


def test_point_cloud_reference_uses_its_rendered_view(kb, tmp_path):
    cloud = tmp_path / "part.xyz"
    cloud.write_text("0 0 0\n1 0 0\n0 1 0\n")
    view = make_image(5)
    sample = kb.add_reference("bagel", cloud, modality="point_cloud", view_image=view)
    assert sample.modality == "point_cloud" and sample.path.suffix == ".xyz"
    assert kb.nearest_references("bagel", view, 1) == [sample]


def test_bad_view_image_is_refused(kb, tmp_path):
    cloud = tmp_path / "part.xyz"
    cloud.write_text("0 0 0\n")
    with pytest.raises(InputError, match="view_image"):
        kb.add_reference("bagel", cloud, modality="point_cloud", view_image="render.png")


def test_import_references_stores_every_image_of_a_folder(kb, tmp_path):
    folder = tmp_path / "good"
    for seed in range(3):
        save_image(make_image(seed), folder / f"{seed}.png")
    (folder / "readme.md").write_text("ignored: not an image")
    samples = kb.import_references(folder, "widget")
    assert len(samples) == 3 and {s.class_name for s in samples} == {"widget"}
    assert sorted(s.id for s in kb.references("widget")) == sorted(s.id for s in samples)


def test_import_with_one_broken_image_stores_nothing(kb, tmp_path):
    folder = tmp_path / "good"
    save_image(make_image(1), folder / "a.png")
    (folder / "b.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(InputError, match="b.png"):
        kb.import_references(folder, "widget")
    assert kb.references("widget") == []


def test_import_from_a_folder_without_images_is_refused(kb, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no image files"):
        kb.import_references(tmp_path / "empty", "widget")
    with pytest.raises(InputError, match="not a folder"):
        kb.import_references(tmp_path / "nowhere", "widget")


def test_nearest_references_ranks_by_similarity(kb, image_file):
    near = kb.add_reference("widget", image_file(1, base=(200, 40, 40)))
    far = kb.add_reference("widget", image_file(2, base=(30, 30, 220)))
    middle = kb.add_reference("widget", image_file(3, base=(150, 90, 60)))
    query = make_image(1, base=(195, 45, 40))
    assert kb.nearest_references("widget", query, 3) == [near, middle, far]
    assert kb.nearest_references("widget", query, 1) == [near]


def test_nearest_references_breaks_ties_by_id_not_insertion_order(kb, tmp_path):
    # Four different files with identical pixels: PNG text chunks change the bytes, not the image.
    from PIL.PngImagePlugin import PngInfo

    image = make_image(7)
    for i in range(4):
        info = PngInfo()
        info.add_text("copy", str(i))
        image.save(tmp_path / f"{i}.png", pnginfo=info)
    samples = [kb.add_reference("widget", tmp_path / f"{i}.png") for i in range(4)]
    chosen = kb.nearest_references("widget", image, 2)
    assert [s.id for s in chosen] == sorted(s.id for s in samples)[:2]


def test_nearest_references_of_unknown_class_is_empty(kb):
    assert kb.nearest_references("no such part", make_image(1), 3) == []


def test_suggest_classes_ranks_the_class_of_the_most_similar_reference_first(kb, image_file):
    kb.add_reference("red part", image_file(1, base=(210, 30, 30)))
    kb.add_reference("blue part", image_file(2, base=(30, 30, 210)))
    kb.add_reference("green part", image_file(3, base=(30, 210, 30)))
    suggestions = kb.suggest_classes(make_image(4, base=(200, 40, 35)), k=2)
    assert [name for name, _ in suggestions][0] == "red_part" and len(suggestions) == 2
    assert suggestions[0][1] > suggestions[1][1]


def test_suggest_classes_without_references_is_empty(kb):
    assert kb.suggest_classes(make_image(1)) == []


def test_comparing_with_something_that_is_not_an_image_is_refused(kb):
    with pytest.raises(InputError, match="PIL image"):
        kb.nearest_references("widget", np.zeros((4, 4, 3)), 1)


def test_unknown_reference_id_raises_not_found(kb):
    with pytest.raises(NotFoundError):
        kb.delete_reference("ref-widget-000000000000")


def test_references_reopen_with_their_files(open_kb, image_file):
    sample = open_kb().add_reference("widget", image_file(1))
    again = open_kb()
    assert again.references("widget") == [sample] and sample.path.is_file()
