"""Reference normals as a workflow: what a message offers, what a button stores, thumbnails, removal, and
how many an analysis uses. The real knowledge base and loaders; no browser (tests/test_ui_browser.py has one)."""

from __future__ import annotations

import pytest

from assistant.app import references as refs
from assistant.app.access import SINGLE_USER, User
from assistant.config import load_settings
from tests.helpers.defects import jitter, textured_part
from tools.agent.consent import class_named_in, offers_references

KNOWN = ["bottle", "demo_bracket", "metal_nut"]
OPERATOR = User("olga", "operator")


@pytest.mark.parametrize("message", [
    "these are normal", "add these three as reference normals for bottle", "They're all good", "here are three good parts",
    "store these as references", "use these as normals for demo bracket", "good samples for bottle", "Normals of the widget",
    "this one is fine, keep it as a reference", "can you add these as references?", "all of these are OK",
    "3 normal samples", "These look perfect", "add this as a reference", "these are defect-free", "These’re fine",
])
def test_saying_the_files_are_normal_in_many_words_offers_to_store_them(message):
    assert offers_references(message)


@pytest.mark.parametrize("message", [
    "is anything wrong?", "are these normal?", "is this normal", "these are not normal", "this isn't good", "why?",
    "compare with the reference", "what does a normal part look like", "rule for bottle: a normal rim is closed",
    "remember that normal parts have two holes", "keep in mind that good parts are shiny", "check these against the references",
])
def test_questions_and_lessons_offer_nothing(message):
    assert not offers_references(message)


def test_without_files_only_an_explicit_request_offers_the_last_inspected_file():
    assert offers_references("add this as a reference", with_files=False)
    assert not offers_references("these are normal", with_files=False)  # which ones? no files came with it


@pytest.mark.parametrize("message, expected", [
    ("add these three as reference normals for bottle", "bottle"), ("use these as normals for demo bracket", "demo_bracket"),
    ("Metal nuts, all good", "metal_nut"), ("normals of the gear wheel", "gear wheel"), ("these are normal", None),
])
def test_the_class_is_read_from_the_message(message, expected):
    assert class_named_in(message, KNOWN) == expected


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from knowledge.store import KnowledgeBase

    root = tmp_path_factory.mktemp("refs")
    settings = load_settings({"home": str(root / "home"), "backend": "offline"}, env={})
    base = textured_part(seed=4)
    files = [root / f"normal_{i}.png" for i in range(4)]
    for i, path in enumerate(files):
        jitter(base, seed=i).save(path)
    broken = root / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not a picture")
    return KnowledgeBase.open(settings.kb_dir), settings, files, broken


def test_an_offer_takes_the_class_from_the_message_then_the_class_box_then_the_last_inspection(store):
    _, _, files, _ = store
    offer = refs.offer_from_message("these are normal bottles", [str(files[0])], ["a.png"], class_box="metal nut",
                                    known_classes=KNOWN)
    assert offer.class_name == "bottle" and offer.files == [str(files[0])]
    offer = refs.offer_from_message("these are normal", [str(files[0])], ["a.png"], class_box="metal nut",
                                    known_classes=KNOWN)
    assert offer.class_name == "metal nut"
    assert "Store 1 file(s) as reference normals of **metal nut**?" in offer.question()
    nameless = refs.offer_from_message("these are normal", [str(files[0])], ["a.png"], class_box="", known_classes=KNOWN)
    assert nameless.class_name is None and "Name the class first" in nameless.question()


def test_asking_to_keep_the_last_file_warns_when_it_was_judged_anomalous(store):
    from types import SimpleNamespace

    _, _, files, _ = store
    artifact = SimpleNamespace(path=files[0], name="part.png")
    verdict = SimpleNamespace(anomalous=True, score=0.93)
    last = refs.Inspected(artifact, "bottle", verdict)
    offer = refs.offer_from_message("add this as a reference", [], [], class_box=None, known_classes=KNOWN, last=last)
    assert offer.files == [str(files[0])] and offer.class_name == "bottle"
    assert "judged ANOMALOUS (score 0.93)" in offer.question()


def test_storing_several_files_stores_the_good_ones_and_names_the_refused(store):
    kb, settings, files, broken = store
    status = refs.store_files(kb, SINGLE_USER, "widget", [str(files[0]), str(files[1]), str(broken)],
                              ["n0.png", "n1.png", "broken.png"], settings)
    assert status.startswith("✅ Stored 2 reference normal(s) of widget; 2 stored in all")
    assert "not stored: broken.png:" in status
    assert [r.author for r in kb.references("widget")] == ["user", "user"]


def test_an_operator_stores_nothing(store):
    kb, settings, files, _ = store
    before = len(kb.references("gadget"))
    status = refs.store_files(kb, OPERATOR, "gadget", [str(files[2])], ["n2.png"], settings)
    assert "only experts may change knowledge" in status and len(kb.references("gadget")) == before


def test_thumbnails_say_who_stored_them_and_when_newest_first(store):
    kb, settings, files, _ = store
    refs.store_files(kb, SINGLE_USER, "thumbs", [str(files[0])], ["first.png"], settings)
    refs.store_files(kb, SINGLE_USER, "thumbs", [str(files[3])], ["second.png"], settings)
    pictures, ids = refs.gallery(kb, "thumbs")
    stored = kb.references("thumbs")
    assert ids == [stored[1].id, stored[0].id]
    assert all(p[0].size[0] <= 256 and p[1].startswith("user · 20") for p in pictures)


def test_removing_a_reference_needs_the_confirmation_and_an_expert(store):
    kb, settings, files, _ = store
    refs.store_files(kb, SINGLE_USER, "removal", [str(files[0]), str(files[1])], ["a.png", "b.png"], settings)
    first = kb.references("removal")[0].id
    assert refs.confirm_remove(kb, SINGLE_USER, None).startswith("⚠️ nothing to remove")
    status, pending = refs.ask_remove(OPERATOR, first)
    assert pending is None and "only experts may change knowledge" in status
    status, pending = refs.ask_remove(SINGLE_USER, first)
    assert pending == first and "Yes, remove" in status
    assert refs.confirm_remove(kb, OPERATOR, pending).startswith("⚠️")
    assert "1 left" in refs.confirm_remove(kb, SINGLE_USER, pending)
    assert [r.id for r in kb.references("removal")] != [first] and len(kb.references("removal")) == 1


def test_an_analysis_uses_every_stored_reference_up_to_the_cap(store, tmp_path):
    kb, settings, files, _ = store
    assert refs.to_use(kb, None) is None and refs.to_use(kb, "nothing stored") == 0
    refs.store_files(kb, SINGLE_USER, "capped", [str(f) for f in files[:3]], ["a", "b", "c"], settings)
    assert refs.to_use(kb, "capped") == 3
    many = []
    for i in range(refs.MAX_REFERENCES + 2):
        path = tmp_path / f"extra_{i}.png"
        jitter(textured_part(seed=4), seed=50 + i).save(path)
        many.append(str(path))
    refs.store_files(kb, SINGLE_USER, "capped", many, [p.rsplit("/", 1)[-1] for p in many], settings)
    assert refs.to_use(kb, "capped") == refs.MAX_REFERENCES
