"""A series verdict speaks in the series' terms: ask --json regions, "where exactly?", the plot."""

from __future__ import annotations

import json

import pytest

from assistant.cli import main
from assistant.config import load_settings
from assistant.session import Session
from tests.helpers import data


@pytest.fixture(scope="module")
def spiky_csv(tmp_path_factory):
    frame = data.series_frame(3000, columns=("temperature", "pressure"), spikes=((1200, 3.0), (2400, -3.0)), label=False)
    return data.write_series(frame, tmp_path_factory.mktemp("series") / "line.csv")


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    return load_settings({"home": str(tmp_path_factory.mktemp("home")), "backend": "offline"}, env={})


def test_ask_json_reports_each_flagged_window_as_a_region(spiky_csv, settings, capsys):
    code = main(["--home", str(settings.home), "ask", str(spiky_csv), "--backend", "offline", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["anomalous"] is True
    assert {"score", "score_source", "reasoning", "regions", "location"} <= set(out)
    windows = [r for r in out["regions"] if r["kind"] == "series_window"]
    found = {(r["column"], r["start_row"] <= row <= r["end_row"]) for r in windows for row in (1200, 2400)}
    assert ("temperature", True) in found
    first = windows[0]
    assert first["start"].startswith("2024-01") and first["end"] >= first["start"] and 0.5 <= first["score"] <= 1
    assert out["location"]["where"].startswith("temperature: 2024-01")


def test_where_exactly_names_the_windows_with_values_against_the_band(spiky_csv, settings):
    from knowledge.store import KnowledgeBase

    session = Session(settings, KnowledgeBase.open(settings.kb_dir))
    list(session.send("is anything wrong?", [str(spiky_csv)]))
    answer = next(e.text for e in session.send("where exactly?", []) if e.kind == "answer")
    assert "Flagged windows" in answer and "temperature: 2024-01" in answer and "was expected" in answer
    assert "no region" not in answer.lower()


def test_a_calm_series_says_no_window_was_flagged(tmp_path, settings):
    from knowledge.store import KnowledgeBase

    calm = data.write_series(data.series_frame(2000, label=False), tmp_path / "calm.csv")
    session = Session(settings, KnowledgeBase.open(settings.kb_dir))
    verdict = next(e.verdict for e in session.send("", [str(calm)]) if e.kind == "verdict")
    answer = next(e.text for e in session.send("where is it?", []) if e.kind == "answer")
    assert verdict.anomalous is False and verdict.regions == [] and "no window" in answer
