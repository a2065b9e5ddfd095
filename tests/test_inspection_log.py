"""The inspection log: one line per verdict, per person, bounded; exported as CSV or JSON by the app and by
`anomaly-chat log export`."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from assistant.app import inspection_log as log
from assistant.cli import main
from tools.errors import InputError


def _verdict(label="anomalous", score=0.8712345678, class_name="juice_bottle"):
    return SimpleNamespace(label=label, score=score, class_name=class_name, backend="offline", model="experts")


def _artifact(name="part 1.png", sha="ab" * 32):
    return SimpleNamespace(name=name, sha256=sha)


def _write(home, user, when: datetime, **fields):
    line = log.entry(user, _artifact(fields.pop("name", "part.png")), _verdict(**fields)) | {"time": when.isoformat()}
    folder = log.user_dir(home, user)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / log.LOG_NAME, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")


def test_a_verdict_becomes_one_line_with_what_an_auditor_needs(tmp_path):
    line = log.record(tmp_path, "anna", _artifact(), _verdict())
    assert set(line) == set(log.FIELDS) and line["score"] == 0.8712 and line["sha256"] == "ab" * 32
    assert log.entries(tmp_path, user="anna") == [line] and log.entries(tmp_path, user="ole") == []


def test_everyones_lines_oldest_first_and_only_since_a_time(tmp_path):
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    _write(tmp_path, "anna", now - timedelta(days=3), name="old.png")
    _write(tmp_path, "ole", now - timedelta(hours=2), name="new.png")
    _write(tmp_path, "anna", now - timedelta(hours=5), name="middle.png")
    assert [x["file_name"] for x in log.entries(tmp_path)] == ["old.png", "middle.png", "new.png"]
    since = log.parse_since("1d", now=now)
    assert [x["file_name"] for x in log.entries(tmp_path, since=since)] == ["middle.png", "new.png"]
    assert log.parse_since("2026-02-27") == datetime(2026, 2, 27, tzinfo=UTC)


@pytest.mark.parametrize("text", ["yesterday", "7 days", "2026-13-01", ""])
def test_a_since_that_is_no_time_is_one_clear_error(text):
    with pytest.raises(InputError, match="not a date or a duration"):
        log.parse_since(text)


def test_the_csv_cannot_start_a_spreadsheet_formula(tmp_path):
    log.record(tmp_path, "anna", _artifact(name="=HYPERLINK(\"http://x\")"), _verdict())
    text = log.as_csv(log.entries(tmp_path))
    [row] = list(csv.DictReader(io.StringIO(text)))
    assert row["file_name"] == "'=HYPERLINK(\"http://x\")" and row["verdict"] == "anomalous"


def test_a_full_log_is_rotated_and_the_oldest_rotation_dropped(tmp_path, monkeypatch):
    monkeypatch.setattr(log, "MAX_FILE_BYTES", 200)
    monkeypatch.setattr(log, "KEEP_ROTATED", 2)
    for i in range(12):
        log.record(tmp_path, "anna", _artifact(name=f"p{i}.png"), _verdict())
    folder = log.user_dir(tmp_path, "anna")
    assert sorted(p.name for p in folder.glob("*.jsonl")) == ["inspections.1.jsonl", "inspections.2.jsonl",
                                                              "inspections.jsonl"]
    names = [x["file_name"] for x in log.entries(tmp_path, user="anna")]
    assert names[-1] == "p11.png" and "p0.png" not in names and len(names) < 12


def test_a_line_cut_by_a_crash_is_skipped(tmp_path):
    log.record(tmp_path, "anna", _artifact(), _verdict())
    with open(log.user_dir(tmp_path, "anna") / log.LOG_NAME, "a", encoding="utf-8") as handle:
        handle.write('{"time": "2026-01-0')
    assert len(log.entries(tmp_path)) == 1


def test_cli_log_export_writes_csv_to_stdout_by_default(tmp_path, capsys):
    log.record(tmp_path, "anna", _artifact(), _verdict())
    assert main(["--home", str(tmp_path), "log", "export"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["user"], r["file_name"], r["class_name"], r["verdict"]) for r in rows] == [
        ("anna", "part 1.png", "juice_bottle", "anomalous")]


def test_cli_log_export_json_to_a_file_for_one_person_since_a_time(tmp_path, capsys):
    now = datetime.now(UTC)
    _write(tmp_path, "anna", now - timedelta(days=10), name="old.png")
    _write(tmp_path, "anna", now - timedelta(minutes=5), name="recent.png")
    _write(tmp_path, "ole", now - timedelta(minutes=5), name="others.png")
    out = tmp_path / "log.json"
    assert main(["--home", str(tmp_path), "log", "export", str(out), "--json", "--since", "7d", "--user", "anna"]) == 0
    assert [x["file_name"] for x in json.loads(out.read_text(encoding="utf-8"))] == ["recent.png"]
    assert "wrote 1 inspection(s)" in capsys.readouterr().err


def test_cli_log_export_refuses_a_bad_since_with_exit_2_and_one_line(tmp_path, capsys):
    assert main(["--home", str(tmp_path), "log", "export", "--since", "last tuesday"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--since 'last tuesday'" in err


def test_cli_log_export_to_a_folder_that_does_not_exist_is_one_line_and_writes_nothing(tmp_path, capsys):
    assert main(["--home", str(tmp_path), "log", "export", str(tmp_path / "missing" / "log.csv")]) == 2
    assert "cannot write log.csv" in capsys.readouterr().err and not (tmp_path / "missing").exists()
