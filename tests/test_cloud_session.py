"""Point clouds end to end: session, knowledge base, 3-D expert and offline backend, as a person would use them."""

from __future__ import annotations

import json

import pytest

from assistant.cli import main
from assistant.config import load_settings
from assistant.session import Session
from tests.helpers import data, scans


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Three reference scans of a ball, a good one and a dented one (unordered PLY, random poses)."""
    root = tmp_path_factory.mktemp("scans")
    base, _ = scans.object_mesh("sphere")
    found = {f"ref{i}": data.write_cloud(scans.free_scan(base, None, seed=i, points=20_000).points, root / f"ref{i}.ply")
             for i in range(3)}
    found["good"] = data.write_cloud(scans.free_scan(base, None, seed=40, points=20_000).points, root / "good.ply")
    mesh, defect = scans.object_mesh("sphere", "dent", seed=4, depth=2.0)
    found["dented"] = data.write_cloud(scans.free_scan(mesh, defect, seed=41, points=20_000).points, root / "dented.ply")
    return found


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    return load_settings({"home": str(tmp_path_factory.mktemp("home")), "backend": "offline"}, env={})


@pytest.fixture(scope="module")
def kb(settings):
    from knowledge.store import KnowledgeBase

    store = KnowledgeBase.open(settings.kb_dir)
    yield store
    store.close()


def _run(session, *args, **kwargs):
    events = list(session.send(*args, **kwargs))
    return events, next(e.verdict for e in events if e.kind == "verdict")


def test_a_dented_scan_gets_a_3d_verdict_with_regions_and_a_deviation_picture(settings, kb, files):
    refs = [files[f"ref{i}"] for i in range(3)]
    session = Session(settings, kb)
    events, verdict = _run(session, "is anything wrong?", [files["dented"], *refs], class_name="ball")
    steps = [e.title for e in events if e.kind == "step" and e.status == "done"]
    assert "🔬 3-D expert" in steps
    assert verdict.anomalous is True and verdict.score > 0.5 and verdict.score_source == "expert"
    assert verdict.regions[0]["kind"] == "dent" and verdict.regions[0]["depth"] < 0 and verdict.defect_type == "dent"
    assert "3-D expert aligned the query ball to 3 reference scan(s)" in verdict.reasoning
    assert any(e.title == "evidence" and e.images for e in events)
    answer = next(e.text for e in session.send("where exactly?") if e.kind == "answer")
    assert "dent" in answer


def test_a_good_scan_passes(settings, kb, files):
    refs = [files[f"ref{i}"] for i in range(3)]
    _, verdict = _run(Session(settings, kb), "", [files["good"], *refs], class_name="ball")
    assert verdict.anomalous is False and verdict.score < 0.5


def test_the_class_camera_comes_from_the_references_not_the_query(settings, kb, files):
    refs = [files[f"ref{i}"] for i in range(3)]
    _run(Session(settings, kb), "", [files["dented"], *refs], class_name="Camera Ball")
    stored = json.loads((settings.cache_dir / "cameras" / "camera_ball.json").read_text())
    from tools.inputs.artifacts import load
    from tools.render.camera import camera_for_references
    from tools.render.views import prepared_cloud

    expected = camera_for_references([prepared_cloud(load(r)).points for r in refs])
    assert stored["fixed_by"] == "references" and stored["follow"]  # free parts in random poses: the view follows
    assert tuple(stored["direction"]) == pytest.approx(expected.direction) and stored["span"] == pytest.approx(expected.span)


def test_without_any_reference_the_verdict_is_a_labelled_self_check_not_undecided(settings, kb, files):
    _, verdict = _run(Session(settings, kb), "", [files["dented"]], class_name="lonely ball")
    assert verdict.anomalous is not None and verdict.score is not None
    assert "weaker evidence" in verdict.reasoning and "kb add-ref" in verdict.reasoning


def test_stored_reference_scans_are_used_by_ask(settings, kb, files, capsys):
    home = str(settings.home)
    assert main(["--home", home, "kb", "add-ref", "stored ball", *(str(files[f"ref{i}"]) for i in range(3))]) == 0
    capsys.readouterr()
    assert main(["--home", home, "ask", str(files["dented"]), "--class", "stored ball", "--references", "3",
                 "--backend", "offline", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["anomalous"] is True and answer["regions"][0]["kind"] == "dent"


def _follow_up(session, question):
    events = list(session.send(question))
    return next(e.text for e in events if e.kind == "answer"), [e.title for e in events if e.images]


def test_follow_ups_about_a_dented_scan_answer_in_3d_with_the_scans_own_figures(settings, kb, files):
    refs = [files[f"ref{i}"] for i in range(3)]
    session = Session(settings, kb)
    _, verdict = _run(session, "", [files["dented"], *refs], class_name="ball")
    dent = verdict.regions[0]
    where, _ = _follow_up(session, "where exactly?")
    centre = "centre (" + ", ".join(f"{v:.3g}" for v in dent["centre"]) + ")"
    assert centre in where and "deep (in the scan's units)" in where and "scan's own coordinates" in where
    assert "fractions of the image" not in where
    why, pictures = _follow_up(session, "why?")
    assert f"deviates from the reference surface by {dent['deviation']:.3g}" in why
    assert "the reference scans, each measured against the others, deviate at most" in why and "times as much" in why
    assert "expert's distance" not in why  # the vision expert's figures on renders would mean nothing here
    assert any(title.startswith("zoomed, facing each place") for title in pictures)
    compared, _ = _follow_up(session, "compare it with the reference")
    assert "Compared with 3 reference normal(s)" in compared and "deviates from the reference surface" in compared


def test_follow_ups_about_a_good_scan_point_at_the_place_that_differs_most_in_3d(settings, kb, files):
    refs = [files[f"ref{i}"] for i in range(3)]
    session = Session(settings, kb)
    _, verdict = _run(session, "", [files["good"], *refs], class_name="ball")
    assert verdict.anomalous is False
    where, _ = _follow_up(session, "where exactly?")
    assert "no defect to locate" in where and "centre (" in where and "below the 0.5 threshold" in where
    why, _ = _follow_up(session, "why?")
    assert "aligned reference surface" in why and "threshold there" in why


def test_follow_ups_after_a_self_check_say_there_was_no_reference(settings, kb, files):
    session = Session(settings, kb)
    _run(session, "", [files["dented"]], class_name="lonely ball")
    why, _ = _follow_up(session, "why?")
    assert "robust spreads off the surface around it" in why and "no normal variation to compare with" in why
    compared, _ = _follow_up(session, "compare it with the reference")
    assert "no reference normal to compare with" in compared
    score, _ = _follow_up(session, "how sure are you?")
    assert "the scan's own surroundings" in score


def test_a_vlm_gets_the_scans_render_the_3d_evidence_and_its_figures_over_the_openai_protocol(openai_server, kb, files,
                                                                                               tmp_path):
    from tests.fixtures_models import openai_settings_for
    from tests.test_session_models import _image_labels, _user_text

    reply = {"reasoning": "The 3-D expert shows a dent.", "anomalous": True, "confidence": 0.8, "defect_type": "dent",
             "location": {"box": [0.4, 0.4, 0.6, 0.6], "where": "centre"}, "rules_used": []}
    openai_server.enqueue_text_reply(json.dumps(reply))
    session = Session(openai_settings_for(openai_server, tmp_path), kb)
    refs = [files[f"ref{i}"] for i in range(3)]
    events = list(session.send("is anything wrong?", [files["dented"], *refs], class_name="ball"))
    verdict = next(e.verdict for e in events if e.kind == "verdict")
    analysis = openai_server.requests[0]
    labels, text = _image_labels(analysis), _user_text(analysis)
    assert labels[-2:] == ["[image: query]", "[image: expert]"] and labels.count("[image: reference 1]") == 1
    assert "3-D expert" in text and "dent" in text  # the expert's measured summary is in the prompt
    assert verdict.backend == "openai" and verdict.anomalous is True
    openai_server.enqueue_tool_call("show_regions", {"count": 1, "view": "crops"})
    openai_server.enqueue_text_reply("The dent is where the crop shows it.")
    list(session.send("where exactly?"))
    follow_up = openai_server.requests[-1].body["messages"]
    result = next(m for m in follow_up if m["role"] == "tool")["content"]
    assert "centre (" in result and "deep (in the scan's units)" in result  # 3-D figures, not image fractions
    after = follow_up[follow_up.index(next(m for m in follow_up if m["role"] == "tool")) + 1]
    assert after["role"] == "user" and any(p.get("type") == "image_url" for p in after["content"])
