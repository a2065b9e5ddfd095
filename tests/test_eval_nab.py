"""`eval --format nab`: our detections in NAB's results layout, NAB scores of ours and of peers side by side."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from assistant.cli import main
from tests.helpers.datasets import make_nab

GROUP = "machine"


def _peer(root, detector: str, first_row_of_window: bool) -> None:
    """A peer detector's results: it fires at the first row of each labelled window, or nowhere."""
    windows = json.loads((root / "labels" / "combined_windows.json").read_text())
    for key, spans in windows.items():
        table = pd.read_csv(root / "data" / key)
        score = np.zeros(len(table))
        for start, _ in spans:
            score[pd.to_datetime(table["timestamp"]) == pd.Timestamp(start)] = float(first_row_of_window)
        path = root / "results" / detector / GROUP / f"{detector}_{key.split('/')[1]}"
        path.parent.mkdir(parents=True, exist_ok=True)
        table.assign(anomaly_score=score, label=0).to_csv(path, index=False)


@pytest.fixture
def nab_set(tmp_path):
    root = make_nab(tmp_path / "nab", rows=600, normal=1, spiky=2, group=GROUP)  # spikes after the probation
    _peer(root, "oracle", True)
    _peer(root, "silent", False)
    profiles = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")
    (root / "config").mkdir()
    thresholds = {d: {p: {"threshold": 0.5, "score": 0} for p in profiles} for d in ("oracle", "silent")}
    (root / "config" / "thresholds.json").write_text(json.dumps(thresholds))
    return root


def _eval(tmp_path, root, *extra):
    out = tmp_path / "out"
    code = main(["--home", str(tmp_path / "home"), "eval", str(root), "--format", "nab", "--backend", "offline",
                 "--out", str(out), "--quiet", *extra])
    return code, out


def test_table_scores_ours_and_the_peers_on_the_same_series(nab_set, tmp_path, capsys):
    code, out = _eval(tmp_path, nab_set, "--peers", str(nab_set / "results"))
    printed = capsys.readouterr().out
    assert code == 0 and "NAB scores" in printed
    corpus = json.loads((out / "nab.json").read_text())["corpus"]
    assert set(corpus) == {"anomalychat", "anomalychatOffline", "oracle", "silent"}
    assert corpus["oracle"]["standard"] == pytest.approx(100.0) and corpus["silent"]["standard"] == 0.0
    assert corpus["anomalychat"]["standard"] > 50  # two tall spikes, found by the causal mode
    report = (out / "report.md").read_text()
    assert "## NAB scores" in report and "oracle" in report and (out / "nab_scores.png").stat().st_size > 1000


def test_our_detections_are_written_in_nab_results_layout(nab_set, tmp_path, capsys):
    code, out = _eval(tmp_path, nab_set)
    assert code == 0
    path = out / "results" / "anomalychat" / GROUP / "anomalychat_spike_1.csv"
    table = pd.read_csv(path)
    assert list(table.columns) == ["timestamp", "value", "anomaly_score", "label"]
    assert table["anomaly_score"].between(0, 1).all() and table["label"].sum() > 0
    data = pd.read_csv(nab_set / "data" / GROUP / "spike_1.csv")
    assert (table["timestamp"] == data["timestamp"]).all() and np.allclose(table["value"], data["value"])
    alarms = table.index[table["anomaly_score"] >= 0.5]
    assert len(alarms) >= 1 and table.loc[alarms, "label"].eq(1).any()  # 0.5 is the decision threshold
    assert (out / "results" / "anomalychatOffline" / GROUP / "anomalychatOffline_calm_0.csv").is_file()


def test_peers_need_the_nab_format(tmp_path, capsys):
    code = main(["--home", str(tmp_path / "home"), "eval", str(tmp_path), "--format", "folder", "--peers", str(tmp_path)])
    assert code == 2 and "--format nab only" in capsys.readouterr().err


def test_missing_thresholds_file_is_a_one_line_error(nab_set, tmp_path, capsys):
    (nab_set / "config" / "thresholds.json").unlink()
    code, _ = _eval(tmp_path, nab_set, "--peers", str(nab_set / "results"))
    err = capsys.readouterr().err
    assert code == 2 and "thresholds.json" in err and len(err.strip().splitlines()) == 1
