"""Rules and classes in the knowledge base, embedded and on a Chroma server."""

from __future__ import annotations

import pytest

from knowledge.names import MAX_RULE_CHARS, canonical_class
from tools.errors import InputError, NotFoundError


def test_class_names_match_tolerant_of_case_spaces_hyphens_underscores():
    assert {canonical_class(n) for n in ("Metal Nut", "metal-nut", " METAL_NUT ", "metal  nut")} == {"metal_nut"}


@pytest.mark.parametrize("bad", ["", "   ", "a/b", "../x", "x" * 65, "_-_"])
def test_unusable_class_names_are_refused(bad):
    with pytest.raises(InputError):
        canonical_class(bad)


def test_added_rule_is_listed_for_its_class_under_any_spelling(kb):
    rule = kb.add_rule("Screw Bag", "Two washers are required in every bag.", kind="logical", author="ana")
    assert rule.class_name == "screw_bag" and rule.author == "ana" and rule.source == "expert" and rule.active
    assert rule.id in [r.id for r in kb.rules("screw-bag")]
    assert kb.get_rule(rule.id) == rule


def test_new_class_is_created_with_its_display_name(kb):
    kb.add_rule("Gear Wheel", "All teeth are present and equally spaced.")
    assert "gear_wheel" in kb.classes()
    assert kb.display_name("gear_wheel") == "Gear Wheel"


def test_unknown_class_reads_as_empty(kb):
    assert kb.rules("no such part") == []
    assert kb.references("no such part") == []
    assert kb.class_settings("no such part") == {"rotation_invariant": False, "matching": "auto"}


def test_rules_list_normality_before_logical_before_defects(kb):
    kb.add_rule("widget", "A scratch on the lid.", kind="defect")
    kb.add_rule("widget", "Exactly two screws.", kind="logical")
    kb.add_rule("widget", "The lid is flat and grey.", kind="normality")
    assert [r.kind for r in kb.rules("widget")] == ["normality", "logical", "defect"]


@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_empty_rule_is_refused_and_nothing_stored(kb, text):
    before = kb.classes()
    with pytest.raises(InputError, match="empty"):
        kb.add_rule("widget", text)
    assert kb.classes() == before and kb.rules("widget") == []


def test_rule_over_the_length_limit_is_refused_and_nothing_stored(kb):
    with pytest.raises(InputError, match=str(MAX_RULE_CHARS)):
        kb.add_rule("widget", "x" * (MAX_RULE_CHARS + 1))
    assert kb.rules("widget") == []
    assert kb.add_rule("widget", "y" * MAX_RULE_CHARS).text == "y" * MAX_RULE_CHARS


@pytest.mark.parametrize(("field", "value"), [("kind", "opinion"), ("modality", "smell"), ("author", "  ")])
def test_bad_rule_fields_are_refused(kb, field, value):
    with pytest.raises(InputError, match=field):
        kb.add_rule("widget", "The lid is flat.", **{field: value})
    assert kb.rules("widget") == []


def test_error_messages_are_one_line(kb):
    with pytest.raises(InputError) as caught:
        kb.add_rule("widget", "x" * (MAX_RULE_CHARS + 1))
    assert "\n" not in str(caught.value)


def test_edit_rule_changes_text_and_records_the_editor(kb):
    rule = kb.add_rule("widget", "The lid is flat.", author="ana")
    edited = kb.edit_rule(rule.id, text="The lid is flat and has no dents.", author="bo")
    assert (edited.text, edited.author, edited.created_at) == ("The lid is flat and has no dents.", "bo", rule.created_at)
    assert kb.get_rule(rule.id) == edited


def test_edit_rule_kind_keeps_author(kb):
    rule = kb.add_rule("widget", "The lid is flat.", author="ana")
    assert kb.edit_rule(rule.id, kind="defect", author="bo").author == "ana"


def test_edit_rule_without_changes_is_refused(kb):
    rule = kb.add_rule("widget", "The lid is flat.")
    with pytest.raises(InputError, match="nothing to change"):
        kb.edit_rule(rule.id)


def test_edit_with_bad_text_leaves_rule_unchanged(kb):
    rule = kb.add_rule("widget", "The lid is flat.")
    with pytest.raises(InputError):
        kb.edit_rule(rule.id, text=" ")
    assert kb.get_rule(rule.id) == rule


def test_deactivated_rule_is_hidden_but_kept(kb):
    rule = kb.add_rule("widget", "The lid is flat.")
    kb.deactivate_rule(rule.id)
    assert kb.rules("widget") == []
    assert [r.active for r in kb.rules("widget", include_inactive=True)] == [False]
    assert all(r.id != rule.id for r, _ in kb.search_rules("The lid is flat.", k=20))
    assert kb.edit_rule(rule.id, active=True).active


def test_deleted_rule_is_gone(kb):
    rule = kb.add_rule("widget", "The lid is flat.")
    kb.delete_rule(rule.id)
    with pytest.raises(NotFoundError):
        kb.get_rule(rule.id)
    assert kb.rules("widget", include_inactive=True) == []


@pytest.mark.parametrize("action", ["delete_rule", "deactivate_rule", "get_rule"])
def test_unknown_rule_id_raises_not_found(kb, action):
    with pytest.raises(NotFoundError, match="rule-doesnotexist"):
        getattr(kb, action)("rule-doesnotexist")


def test_rule_ids_are_unique(kb):
    rules = kb.add_rules("widget", [f"Rule number {i}." for i in range(200)])
    assert len({r.id for r in rules}) == 200
    assert len(kb.rules("widget")) == 200


def test_search_finds_the_rule_closest_in_meaning(kb):
    kb.add_rule("widget", "Every box must contain exactly three blue marbles.", kind="logical")
    kb.add_rule("widget", "The paint on the lid is glossy red.")
    found = kb.search_rules("how many marbles should be in the box", k=2, class_name="Widget")
    assert found[0][0].text.startswith("Every box must contain")
    assert found[0][1] > found[1][1]
    assert all(-1.0 <= sim <= 1.0 for _, sim in found)


def test_search_without_class_spans_classes(kb):
    kb.add_rule("widget", "Every box must contain exactly three blue marbles.")
    hits = kb.search_rules("juice filled too high in the bottle", k=3)
    assert hits[0][0].class_name == "juice_bottle"


def test_search_in_unknown_class_is_empty(kb):
    assert kb.search_rules("anything", class_name="no such part") == []


@pytest.mark.parametrize(("text", "k"), [("  ", 5), ("lid", 0)])
def test_bad_search_is_refused(kb, text, k):
    with pytest.raises(InputError):
        kb.search_rules(text, k=k)


def test_class_setting_is_stored_and_checked(kb):
    assert kb.set_class_setting("Widget", "matching", "free")["matching"] == "free"
    assert kb.class_settings("widget") == {"rotation_invariant": False, "matching": "free"}
    with pytest.raises(InputError, match="matching"):
        kb.set_class_setting("widget", "matching", "sideways")
    with pytest.raises(InputError, match="rotation_invariant"):
        kb.set_class_setting("widget", "rotation_invariant", "yes")
    assert kb.class_settings("widget")["matching"] == "free"


def test_rules_survive_reopening(open_kb):
    rule = open_kb().add_rule("widget", "The lid is flat.")
    assert open_kb().get_rule(rule.id) == rule


def test_delete_class_removes_its_rules_and_unknown_class_raises(kb):
    kb.add_rule("widget", "The lid is flat.")
    kb.delete_class("Widget")
    assert "widget" not in kb.classes() and kb.rules("widget", include_inactive=True) == []
    with pytest.raises(NotFoundError, match="widget"):
        kb.delete_class("widget")


def test_opening_a_file_as_a_store_is_refused(tmp_path):
    from knowledge.store import KnowledgeBase

    (tmp_path / "kb").write_text("not a folder")
    with pytest.raises(InputError, match="is a file"):
        KnowledgeBase.open(tmp_path / "kb")
