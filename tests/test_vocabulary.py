"""One vocabulary: the class-name normaliser, the lists of modalities and rule kinds, the accepted file types."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from knowledge.names import canonical_class
from tools.agent.consent import match_class
from tools.inputs.artifacts import FORMATS, KINDS, accepted_extensions
from tools.render.camera import class_key as camera_key
from tools.vocabulary import MODALITIES, class_key, display_class

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.parametrize("name", ["Metal Nut", "metal-nut", " METAL_NUT ", "metal  nut", "metal__nut"])
def test_every_layer_reads_a_class_name_the_same_way(name):
    assert class_key(name) == canonical_class(name) == camera_key(name) == "metal_nut"
    assert match_class(name, ["metal_nut"]) == "metal_nut"


def test_a_class_is_shown_in_one_form():
    assert display_class("juice_bottle") == display_class("Juice Bottle") == display_class("juice-bottle") == "juice bottle"


def test_the_camera_file_name_stays_safe_for_any_name():
    assert camera_key("../../etc/passwd") == "etcpasswd" and camera_key("???") == "unnamed"


def test_the_loaders_read_the_modalities_of_the_vocabulary():
    assert KINDS == MODALITIES


def test_the_upload_box_accepts_every_extension_the_loaders_read():
    import ui

    assert accepted_extensions() == ui.FILE_TYPES
    assert {".mkv", ".webm", ".m4v", ".tab", ".pq", ".txt"} <= set(ui.FILE_TYPES)


def test_the_readme_data_formats_table_names_every_extension():
    section = README.read_text(encoding="utf-8").split("## Data formats", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`(\.[a-z0-9]+)`", section))
    missing = [ext for fmt in FORMATS.values() for ext in fmt.extensions if ext not in named]
    assert missing == []
