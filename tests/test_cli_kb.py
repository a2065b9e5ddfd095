"""`anomaly-chat kb ...`: through assistant.cli.main, and as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.cli import main
from tests.fixtures_knowledge import make_image, save_image

CLI = Path(sys.executable).parent / "anomaly-chat"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["kb", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv: str):
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def test_classes_lists_the_seeded_classes(home, capsys):
    rows = run_json(capsys, "classes")
    by_name = {r["name"]: r for r in rows}
    assert by_name["metal_nut"]["display"] == "metal nut" and by_name["screw_bag"]["rules"] >= 3
    code, out, _ = run(capsys, "classes")
    assert code == 0 and "screw_bag" in out


def test_added_rule_shows_in_the_class_rules(home, capsys):
    added = run_json(capsys, "add-rule", "Screw Bag", "Two washers are required in every bag.", "--kind", "logical",
                     "--author", "ana")
    listed = run_json(capsys, "rules", "screw-bag")
    assert added["id"] in [r["id"] for r in listed["rules"]]
    assert (added["kind"], added["author"], listed["class"]) == ("logical", "ana", "screw_bag")
    code, out, _ = run(capsys, "rules", "screw bag")
    assert code == 0 and f"[{added['id']}] (logical) Two washers" in out


def test_deactivated_rule_is_listed_only_with_all(home, capsys):
    rule = run_json(capsys, "add-rule", "widget", "The lid is flat.")
    assert run(capsys, "deactivate-rule", rule["id"])[0] == 0
    assert run_json(capsys, "rules", "widget")["rules"] == []
    assert [r["active"] for r in run_json(capsys, "rules", "widget", "--all")["rules"]] == [False]


def test_rm_rule_deletes(home, capsys):
    rule = run_json(capsys, "add-rule", "widget", "The lid is flat.")
    code, out, _ = run(capsys, "rm-rule", rule["id"])
    assert code == 0 and rule["id"] in out
    assert run_json(capsys, "rules", "widget", "--all")["rules"] == []


@pytest.mark.parametrize(("argv", "message"), [
    (["add-rule", "widget", "   "], "rule text is empty"),
    (["add-rule", "widget", "x" * 4001], "more than 4000"),
    (["rm-rule", "rule-unknown"], "no rule with id 'rule-unknown'"),
    (["deactivate-rule", "rule-unknown"], "no rule with id"),
    (["rules", "no such part"], "no class 'no such part'"),
    (["import", "missing.zip"], "does not exist"),
])
def test_bad_input_exits_2_with_one_line(home, capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_usage_error_exits_2(home, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["kb", "add-rule", "widget"])
    assert caught.value.code == 2
    assert "(see --help)" in capsys.readouterr().err


def test_add_ref_stores_images_and_refuses_other_files(home, capsys, tmp_path):
    image = save_image(make_image(1), tmp_path / "good.png")
    stored = run_json(capsys, "add-ref", "widget", str(image), "--note", "line 2")
    assert [s["note"] for s in stored] == ["line 2"] and Path(stored[0]["path"]).is_file()
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 4)
    code, _, err = run(capsys, "add-ref", "widget", str(image), str(junk))
    assert code == 2 and "junk.bin" in err
    assert len(run_json(capsys, "rules", "widget")["references"]) == 1


def test_import_refs_stores_a_folder(home, capsys, tmp_path):
    for seed in range(3):
        save_image(make_image(seed), tmp_path / "good" / f"{seed}.png")
    assert len(run_json(capsys, "import-refs", str(tmp_path / "good"), "--class", "widget")) == 3
    assert len(run_json(capsys, "rules", "widget")["references"]) == 3


def test_search_returns_rules_with_similarity(home, capsys):
    found = run_json(capsys, "search", "juice filled too high", "-k", "2")
    assert len(found) == 2 and found[0]["class_name"] == "juice_bottle"
    assert found[0]["similarity"] >= found[1]["similarity"]


def test_export_then_import_into_another_home(home, capsys, tmp_path, monkeypatch):
    rule = run_json(capsys, "add-rule", "widget", "The lid is flat.")
    archive = tmp_path / "kb.zip"
    assert run(capsys, "export", str(archive))[0] == 0
    other = tmp_path / "other_home"
    monkeypatch.setenv("ANOMALY_CHAT_HOME", str(other))
    code, out, _ = run(capsys, "import", str(archive))
    assert code == 0 and "Imported" in out
    assert rule["id"] in [r["id"] for r in run_json(capsys, "rules", "widget")["rules"]]


def test_repair_reports_what_it_removed(home, capsys):
    run_json(capsys, "classes")  # creates the store
    orphan = home / "knowledge" / "files" / "00" / ("0" * 64 + ".png")
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"orphan")
    assert run_json(capsys, "repair")["files_removed"] == 1 and not orphan.exists()


def test_cli_uses_the_chroma_server_from_the_environment(home, capsys, monkeypatch, chroma_server):
    monkeypatch.setenv("ANOMALY_CHAT_CHROMA_URL", f"{chroma_server}/?database=cli{os.getpid()}")
    rule = run_json(capsys, "add-rule", "widget", "The lid is flat.")
    assert rule["id"] in [r["id"] for r in run_json(capsys, "rules", "widget")["rules"]]
    assert not (home / "knowledge" / "chroma").exists()  # nothing in an embedded database


def test_unreachable_chroma_server_is_a_one_line_error(home, capsys, monkeypatch):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # free, and nothing listens on it
    monkeypatch.setenv("ANOMALY_CHAT_CHROMA_URL", f"http://127.0.0.1:{port}")
    code, _, err = run(capsys, "classes")
    assert code == 2 and "cannot use the Chroma server" in err and err.count("\n") == 1


def _subprocess(home: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ANOMALY_CHAT_HOME": str(home)}
    return subprocess.run([str(CLI), "kb", *argv], env=env, capture_output=True, text=True, timeout=240)


@pytest.mark.slow
def test_real_subprocess_round_trip(tmp_path):
    home = tmp_path / "home"
    added = _subprocess(home, "add-rule", "gear wheel", "All teeth are present.", "--json")
    assert added.returncode == 0, added.stderr
    rule_id = json.loads(added.stdout)["id"]
    listed = _subprocess(home, "rules", "Gear Wheel", "--json")
    assert listed.returncode == 0 and [r["id"] for r in json.loads(listed.stdout)["rules"]] == [rule_id]
    bad = _subprocess(home, "rm-rule", "rule-unknown")
    assert bad.returncode == 2 and bad.stdout == "" and bad.stderr.count("\n") == 1
    assert "Traceback" not in bad.stderr


def test_reference_scans_stored_together_fix_the_class_camera_together(home, tmp_path, capsys):
    import numpy as np

    from assistant.config import load_settings
    from tests.helpers import data
    from tools.inputs.artifacts import load
    from tools.render.camera import CameraStore, camera_for_references
    from tools.render.views import prepared_cloud

    rng = np.random.default_rng(0)
    blob = rng.normal(size=(4000, 3)) * (10.0, 6.0, 2.0)
    first = data.write_cloud(blob, tmp_path / "first.ply")
    second = data.write_cloud(blob + (60.0, 0.0, 0.0), tmp_path / "second.ply")  # the same part lying elsewhere
    assert run(capsys, "add-ref", "plate", str(first), str(second))[0] == 0
    fixed = CameraStore(load_settings({}).cache_dir / "cameras").get("plate")
    first_points, second_points = (prepared_cloud(load(path)).points for path in (first, second))
    together = camera_for_references([first_points, second_points])
    alone = camera_for_references([first_points])
    assert fixed.to_dict() == together.to_dict() != alone.to_dict()
