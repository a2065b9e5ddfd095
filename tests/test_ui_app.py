"""The chat app served on loopback and driven through its API with gradio_client (offline backend).

One app with sign-in (an expert and an operator) serves every test of the module; each test uses
its own clients, so each has its own conversation.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.app.chat_view import normalise_history
from tests.helpers.app import launched_app

pytestmark = pytest.mark.slow
ALL_PARTS = ["class information", "normality rules", "reference images", "expert evidence"]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with launched_app(tmp_path_factory.mktemp("ui_app"), downloads=True) as running:
        yield running


def _ask(client, text="", files=(), class_name="widget", parts=ALL_PARTS, k=2) -> list[dict]:
    from gradio_client import handle_file

    message = {"text": text, "files": [handle_file(str(f)) for f in files]}
    chat, _box = client.predict(message, class_name, parts, k, api_name="/chat")
    return normalise_history(chat)


def _texts(history) -> str:
    return "\n".join(m["text"] for m in history)


def test_an_image_with_a_question_gets_a_verdict_with_the_heatmap(app):
    history = _ask(app.client("erik"), "is anything wrong?", [app.files["bad"]])
    assert "ANOMALOUS" in _texts(history)
    composite = [m for m in history if "heatmap" in m["text"]]
    assert composite and composite[0]["files"] and Path(composite[0]["files"][0]).stat().st_size > 0
    steps = [m["title"] for m in history if m["title"]]
    assert any("Vision expert" in t for t in steps)


def test_a_follow_up_question_is_answered_about_the_last_inspection(app):
    client = app.client("erik")
    _ask(client, "is anything wrong?", [app.files["bad"]])
    history = _ask(client, "where is it?")
    asked = max(i for i, m in enumerate(history) if m["role"] == "user")
    assert history[asked]["text"] == "where is it?"
    answer, shown = history[-1], history[asked + 1:-1]
    assert answer["role"] == "assistant" and answer["text"] and "⚠️" not in answer["text"]
    assert any(m["files"] and "numbered" in m["text"] for m in shown)  # the map of the places, shown with it


def test_a_rule_taught_in_the_chat_is_stored_and_listed_in_the_knowledge_panel(app):
    client = app.client("erik")
    _ask(client, "is anything wrong?", [app.files["bad"]])
    _ask(client, "rule for widget: the three holes are always dark and round")
    stored = [r for r in app.kb.rules("widget") if r.text == "the three holes are always dark and round"]
    assert stored and stored[0].author == "erik"
    panel = client.predict("widget", "widget", api_name="/knowledge")
    rows = panel[2]["data"]
    assert any(row[0] == stored[0].id for row in rows)


def test_an_operator_cannot_add_a_rule_through_the_api(app):
    before = {r.id for r in app.kb.rules("widget", include_inactive=True)}
    status = app.client("olga").predict("widget", "an operator's rule", "normality", api_name="/add_rule")
    assert "only experts may change knowledge" in status
    assert {r.id for r in app.kb.rules("widget", include_inactive=True)} == before


def test_an_operator_cannot_teach_a_rule_in_the_chat(app):
    client = app.client("olga")
    _ask(client, "is anything wrong?", [app.files["bad"]])
    _ask(client, "rule for widget: operators may not store this sentence")
    assert not [r for r in app.kb.rules("widget", include_inactive=True) if "operators may not" in r.text]


def test_an_expert_adds_a_rule_in_the_panel_and_deletes_it_only_after_confirming(app):
    client = app.client("erik")
    status = client.predict("widget", "the label is straight", "normality", api_name="/add_rule")
    rule_id = status.split("`")[1]
    client.predict(api_name="/confirm_delete")  # no request first: nothing happens
    assert app.kb.get_rule(rule_id)
    asked = client.predict(rule_id, api_name="/request_delete")
    assert "Yes, delete" in asked  # the pending id stays on the server
    client.predict(api_name="/confirm_delete")
    assert rule_id not in {r.id for r in app.kb.rules("widget", include_inactive=True)}


def test_two_clients_do_not_see_each_others_history(app):
    first, second = app.client("erik"), app.client("erik")
    _ask(first, "first client's secret question about this part", [app.files["bad"]])
    history = _ask(second, "what did I ask before?")
    assert "first client's secret" not in _texts(history)
    assert sum(1 for m in history if m["role"] == "user") == 1


def test_a_corrupt_upload_gives_a_one_line_error_and_the_next_upload_works(app):
    client = app.client("erik")
    history = _ask(client, "check this", [app.files["corrupt"]])
    error = history[-1]["text"]
    assert error.startswith("⚠️") and "\n" not in error and "Traceback" not in _texts(history)
    history = _ask(client, "and this one?", [app.files["bad"]])
    assert "ANOMALOUS" in history[-1]["text"]


def test_an_expert_stores_the_current_query_as_a_reference(app):
    client = app.client("erik")
    _ask(client, "is this one normal?", [app.files["ref0"]], class_name="gadget")
    status = client.predict("gadget", api_name="/add_reference")
    assert status.startswith("✅") and len(app.kb.references("gadget")) == 1


def test_only_experts_change_the_backend_and_a_bad_choice_is_one_line(app):
    refused = app.client("olga").predict("offline", "", "", api_name="/use_backend")
    assert "only experts may change the backend" in refused
    expert = app.client("erik")
    assert "Using backend **offline**" in expert.predict("offline", "", "", api_name="/use_backend")
    unknown = expert.predict("no-such-backend", "", "", api_name="/use_backend")
    assert unknown.startswith("⚠️ unknown backend 'no-such-backend'") and "\n" not in unknown


def test_without_a_class_the_most_similar_known_classes_are_suggested(app):
    history = _ask(app.client("erik"), "is anything wrong?", [app.files["bad"]], class_name=None)
    suggestion = [m["text"] for m in history if "most similar known classes" in m["text"]]
    assert suggestion and "widget (" in suggestion[0]


def test_the_page_has_no_run_history_that_would_show_server_paths(app):
    config = app.client("erik").config  # what the page is built from
    assert config["run_history"] is False and "runs" not in config["footer_links"]


def test_an_expert_stores_several_normals_at_once_and_an_operator_none(app):
    from gradio_client import handle_file

    files = [handle_file(str(app.files[f"ref{i}"])) for i in (1, 2)]
    refused = app.client("olga").predict("sprocket", files, "sprocket", api_name="/store_references")
    assert "only experts may change knowledge" in refused[0] and app.kb.references("sprocket") == []
    status = app.client("erik").predict("sprocket", files, "sprocket", api_name="/store_references")
    assert status[0].startswith("✅ Stored 2 reference normal(s) of sprocket; 2 stored in all")
    assert [r.author for r in app.kb.references("sprocket")] == ["erik", "erik"]
