"""Offline follow-ups that show the evidence: crops beside the reference, figures against the normals'
variation, the rules that name the place; answers that never contradict or repeat the verdict.

Real session, knowledge base, vision expert and series expert on the demo bracket and pump the app ships.
"""

from __future__ import annotations

import json
import re

import pytest

from assistant.app.demo_data import DEMO_CLASS, ensure_demo_data
from assistant.config import load_settings
from assistant.session import Session
from tools.agent.fence import DATA_TAGS
from tools.agent.place_pictures import ROW_HEIGHT

CENTRE_RULE = "A normal bracket has four open corner holes and one centre bore."
WHOLE_RULE = "Scratches, dents or rust on the plate are defects."
RAW_FLOAT = re.compile(r"\d\.\d{5,}")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from knowledge.store import KnowledgeBase

    home = tmp_path_factory.mktemp("explain")
    settings = load_settings({"home": str(home), "backend": "offline"}, env={})
    files = ensure_demo_data(home)
    kb = KnowledgeBase.open(settings.kb_dir)
    for path in files.references:
        kb.add_reference(DEMO_CLASS, path, author="lead")
    kb.add_rule(DEMO_CLASS, CENTRE_RULE, author="lead")
    kb.add_rule(DEMO_CLASS, WHOLE_RULE, kind="defect", author="lead")
    return settings, kb, files


def _session_after(demo, path, **options):
    settings, kb, _ = demo
    session = Session(settings, kb)
    events = list(session.send("is anything wrong?", [str(path)], **options))
    return session, next(e.verdict for e in events if e.kind == "verdict")


@pytest.fixture(scope="module")
def scratched(demo):
    return _session_after(demo, demo[2].defective, class_name=DEMO_CLASS, references=3)


@pytest.fixture(scope="module")
def good(demo):
    return _session_after(demo, demo[2].good, class_name=DEMO_CLASS, references=3)


def _ask(session, question):
    events = list(session.send(question))
    answer = next(e.text for e in events if e.kind == "answer")
    pictures = [e for e in events if e.kind == "notice" and e.images]
    return answer, pictures


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s", text) if len(s.strip()) > 40]


def test_why_shows_the_strongest_place_beside_the_reference_with_figures_and_the_rules_there(scratched):
    session, verdict = scratched
    answer, pictures = _ask(session, "why?")
    assert answer.startswith("Why ANOMALOUS") and verdict.regions[0]["where"] in answer
    assert re.search(r"differs \d+\.\d times as much as the normals differ from one another", answer)
    assert "between the 3 reference normals at the same place" in answer
    assert "Rules that name this part" in answer and "centre bore" in answer  # the place is the centre
    assert "Rules about the whole part" in answer and "Scratches, dents or rust" in answer
    assert len(pictures) == 1 and "zoomed" in pictures[0].title and "nearest reference" in pictures[0].title
    assert pictures[0].images[0].width > pictures[0].images[0].height  # query | reference | heatmap side by side


def test_follow_ups_never_repeat_the_verdict_paragraph(scratched):
    session, verdict = scratched
    for question in ("why?", "where exactly?", "compare it with the reference", "how sure are you?"):
        answer, _ = _ask(session, question)
        repeated = [s for s in _sentences(verdict.reasoning) if s in answer]
        assert repeated == [], question


def test_where_exactly_gives_every_box_in_image_terms_with_a_numbered_map(scratched):
    session, verdict = scratched
    answer, pictures = _ask(session, "where exactly?")
    for region in verdict.regions:
        x0, _, x1, _ = region["box"]
        assert f"x {x0:.2f}–{x1:.2f}" in answer
    assert pictures and pictures[0].title.startswith("where")


def test_compare_puts_the_crops_of_each_place_side_by_side(scratched):
    session, verdict = scratched
    answer, pictures = _ask(session, "compare it with the reference")
    assert "Compared with 3 reference normal(s)" in answer and "side by side" in answer
    sheet = pictures[0].images[0]
    rows = min(3, len(verdict.regions))  # one row per place, strongest first, at most three
    assert rows >= 1 and ROW_HEIGHT * rows <= sheet.height < ROW_HEIGHT * (rows + 1)


def test_a_normal_part_is_explained_as_normal_without_a_defect_to_locate(good):
    session, verdict = good
    assert verdict.anomalous is False
    why, pictures = _ask(session, "why?")
    where, _ = _ask(session, "where exactly?")
    assert why.startswith("Why NORMAL") and "below the 0.5 threshold" in why and pictures
    assert "no defect to locate" in where
    assert "ANOMALOUS" not in why + where and "anomalous" not in why.lower().replace("why normal", "")


def test_answers_hold_no_data_tags_and_no_raw_floats(scratched):
    session, _ = scratched
    for question in ("why?", "where exactly?", "compare", "which rules?", "how sure?", "and now?"):
        answer, _ = _ask(session, question)
        assert not any(f"<{tag}>" in answer or f"</{tag}>" in answer for tag in DATA_TAGS), question
        assert not RAW_FLOAT.search(answer), (question, answer)


def test_a_refused_upload_is_not_answered_with_the_previous_files_verdict(demo, tmp_path):
    session, verdict = _session_after(demo, demo[2].defective, class_name=DEMO_CLASS)
    broken = tmp_path / "scan.txt"
    broken.write_text("this is not a point cloud\n", encoding="utf-8")
    with pytest.raises(Exception, match="scan.txt"):
        list(session.send("and this one?", [str(broken)], names=["scan.txt"]))
    answer, pictures = _ask(session, "is anything wrong?")
    assert "scan.txt" in answer and "not inspected" in answer
    assert verdict.label not in answer.lower() and "0.99" not in answer and not pictures


def test_series_why_zooms_on_the_window_against_its_expected_band(demo):
    settings, kb, files = demo
    session = Session(settings, kb)
    verdict = next(e.verdict for e in session.send("", [str(files.series_fault)]) if e.kind == "verdict")
    answer, pictures = _ask(session, "why?")
    assert verdict.anomalous and "strongest flagged window is value:" in answer and "was expected" in answer
    assert pictures and "expected band" in pictures[0].title
    score, _ = _ask(session, "how sure are you?")
    assert "series' own expected course" in score


def test_the_show_regions_tool_offers_a_model_the_same_crops_and_figures(scratched):
    from tools.agent.registry import REGISTRY, call_tool

    session, _ = scratched
    assert "show_regions" in REGISTRY and "relative" in REGISTRY["show_regions"].description
    result = call_tool("show_regions", {"count": 2, "view": "crops"}, session.ctx)
    assert not result.error and len(result.images) == 1
    assert result.text.startswith("<evidence>") and "times as much as the normals differ" in result.text
    assert "<rules>" in result.text and "centre bore" in result.text
    json.dumps(result.data)  # plain data: the places as the verdict lists them


def test_a_vlm_that_asks_for_the_regions_gets_the_crops_and_figures(demo, tmp_path):
    from tests.fixtures_models import openai_settings_for
    from tests.helpers.fake_openai import FakeOpenAIServer

    _, kb, files = demo
    verdict = {"reasoning": "A rust spot.", "anomalous": True, "confidence": 0.9, "defect_type": "rust",
               "location": {"box": None, "where": "right"}, "rules_used": []}
    with FakeOpenAIServer() as server:
        session = Session(openai_settings_for(server, tmp_path), kb)
        server.enqueue_text_reply(json.dumps(verdict))
        list(session.send("is anything wrong?", [str(files.defective)], class_name=DEMO_CLASS, references=3))
        server.enqueue_tool_call("show_regions", {"count": 1, "view": "crops"})
        server.enqueue_text_reply("The crop shows a rust spot the reference does not have.")
        events = list(session.send("why?"))
        messages = server.requests[-1].body["messages"]
    tool_message = next(m for m in messages if m["role"] == "tool")
    assert "times as much as the normals differ" in tool_message["content"]
    pictures = messages[messages.index(tool_message) + 1]["content"]
    assert any(part.get("type") == "image_url" for part in pictures)
    shown = [e for e in events if e.kind == "notice" and e.images]
    assert shown and "nearest reference" in shown[0].title


def test_a_class_name_is_shown_in_one_form_throughout_a_conversation(demo, tmp_path):
    from assistant.app.chat_view import ChatView

    settings, kb, files = demo
    session, view = Session(settings, kb), ChatView(tmp_path)
    turns = [("is anything wrong?", [str(files.defective)]), ("why?", []), ("where exactly?", []), ("compare", []),
             ("which rules apply?", []), ("rule for demo_bracket: the plate edges are straight", [])]
    for text, attached in turns:
        for event in session.send(text, attached, class_name="demo_bracket" if attached else None):
            view.apply(event)
    shown = json.dumps([(m.get("content"), (m.get("metadata") or {}).get("title")) for m in view.messages],
                       ensure_ascii=False)
    shown = re.sub(r"ref-demo_bracket-[0-9a-f]+", "", shown)  # reference ids are ids, not names
    assert "demo bracket" in shown and "demo_bracket" not in shown
    assert "the plate edges are straight" in shown and "<rules>" not in shown
