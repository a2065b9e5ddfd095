"""Secrets: a key set in the environment never shows up in logs, errors, exports, evaluation outputs or the chat.

Each flow runs with a known fake key (the CANARY) in OPENAI_API_KEY against a fake server that
echoes the key back in its error bodies, as some providers do; then every file written under the
data dir and the out dir (zip entries unpacked), the DEBUG log and stdout/stderr are scanned. The
scanner is first shown to find a planted canary, so a clean scan means something.
"""

from __future__ import annotations

import json
import logging
import re
import zipfile
from collections.abc import Iterable
from pathlib import Path

import pytest

from assistant.app.access import SINGLE_USER
from assistant.app.conversation import Conversation
from assistant.cli import main
from assistant.config import load_settings
from tests.helpers.datasets import make_mvtec
from tests.helpers.defects import jitter, textured_part
from tests.helpers.fake_openai import error_body
from tests.helpers.hostile import CANARY

REAL_KEY_SHAPE = re.compile(r"sk-[A-Za-z0-9_-]{24,}")


# Chroma's HNSW segment files (chroma/<segment uuid>/*.bin) are written by its bundled hnswlib from
# buffers it mallocs and never zeroes, at full capacity: their unused slots hold whatever was on the
# process heap before, which can be a freed copy of the key (seen once in a full-suite run; upstream:
# chroma-core/chroma#7688, open). We never write those files and never export them (checked below by
# test_kb_export_holds_no_chroma_index_file); SECURITY.md says to keep the store's folder as private
# as the key. Every other file is scanned.
HNSW_SEGMENT_FILES = {"data_level0.bin", "length.bin", "link_lists.bin", "header.bin"}


def _chroma_index_file(path: Path) -> bool:
    return path.name in HNSW_SEGMENT_FILES and path.parent.parent.name == "chroma"


def find_canary(roots: Iterable[Path] = (), texts: Iterable[str] = ()) -> list[str]:
    """Where the canary appears: files under roots (zip entries too) and texts; empty when nowhere."""
    found = [f"text #{i}" for i, text in enumerate(texts) if CANARY in text]
    needle = CANARY.encode()
    for root in roots:
        for path in (p for p in Path(root).rglob("*") if p.is_file() and not _chroma_index_file(p)):
            if needle in path.read_bytes():
                found.append(str(path))
            elif zipfile.is_zipfile(path):
                with zipfile.ZipFile(path) as archive:
                    found += [f"{path}!{n}" for n in archive.namelist() if needle in archive.read(n)]
    return found


def _logs(caplog) -> list[str]:
    """Every captured record as its handler would write it, tracebacks included."""
    formatter = logging.Formatter("%(levelname)s %(name)s %(message)s")
    return [formatter.format(record) for record in caplog.records]


@pytest.fixture
def key_in_environment(monkeypatch, openai_server, caplog, fast_backoff):
    """OPENAI_API_KEY is the canary, OPENAI_BASE_URL the fake server; logs captured at DEBUG."""
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.url + "/v1")
    caplog.set_level(logging.DEBUG)
    return openai_server


def _echoing_errors(server, statuses=(500, 500, 500, 500)) -> None:
    for status in statuses:
        server.enqueue_error(status, error_body(f"Incorrect API key provided: {CANARY}. Bearer {CANARY}"))


def _key_was_sent(server) -> bool:
    return any(r.credential_is("authorization", CANARY) for r in server.requests)


@pytest.fixture(scope="module")
def picture(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("secret-pictures") / "part.png"
    jitter(textured_part(size=160, seed=9), seed=1).save(path)
    return path


def test_the_canary_is_not_shaped_like_a_real_key():
    assert not REAL_KEY_SHAPE.search(CANARY)


def test_the_scanner_finds_a_planted_canary_in_files_zips_and_texts(tmp_path):
    (tmp_path / "deep" / "er").mkdir(parents=True)
    (tmp_path / "deep" / "er" / "notes.json").write_text(json.dumps({"key": CANARY}))
    with zipfile.ZipFile(tmp_path / "bundle.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("inside.txt", "x" * 1000 + CANARY)
    found = find_canary([tmp_path], ["clean", f"Authorization: Bearer {CANARY}"])
    assert sorted(found) == sorted([str(tmp_path / "deep" / "er" / "notes.json"), f"{tmp_path / 'bundle.zip'}!inside.txt",
                                    "text #1"])


def test_cli_ask_against_a_failing_server_never_shows_the_key(key_in_environment, tmp_path, picture, capsys, caplog):
    _echoing_errors(key_in_environment)
    code = main(["--home", str(tmp_path / "home"), "--debug", "ask", str(picture), "--class", "widget"])
    out, err = capsys.readouterr()
    assert code == 1 and _key_was_sent(key_in_environment)
    assert find_canary([tmp_path], [out, err, *_logs(caplog)]) == []


def test_cli_ask_with_a_rejected_key_never_shows_the_key(key_in_environment, tmp_path, picture, capsys, caplog):
    _echoing_errors(key_in_environment, statuses=(401,))
    code = main(["--home", str(tmp_path / "home"), "ask", str(picture), "--class", "widget", "--json"])
    out, err = capsys.readouterr()
    assert code == 2 and "rejected the API key" in err and _key_was_sent(key_in_environment)
    assert find_canary([tmp_path], [out, err, *_logs(caplog)]) == []


def test_kb_export_never_holds_the_key(key_in_environment, tmp_path, picture, capsys, caplog):
    home = tmp_path / "home"
    assert main(["--home", str(home), "kb", "add-ref", "widget", str(picture)]) == 0
    assert main(["--home", str(home), "kb", "export", str(tmp_path / "kb.zip")]) == 0
    out, err = capsys.readouterr()
    assert zipfile.is_zipfile(tmp_path / "kb.zip")
    assert find_canary([tmp_path], [out, err, *_logs(caplog)]) == []


def test_kb_export_holds_no_chroma_index_file(tmp_path, picture):
    home = tmp_path / "home"
    assert main(["--home", str(home), "kb", "add-ref", "widget", str(picture)]) == 0
    assert any(_chroma_index_file(p) for p in (home / "knowledge").rglob("*"))  # the store wrote them
    assert main(["--home", str(home), "kb", "export", str(tmp_path / "kb.zip")]) == 0
    with zipfile.ZipFile(tmp_path / "kb.zip") as archive:
        names = archive.namelist()
    assert names and not [n for n in names if Path(n).name in HNSW_SEGMENT_FILES or n.endswith(".sqlite3")]


@pytest.mark.slow
def test_evaluation_outputs_never_hold_the_key(key_in_environment, tmp_path, capsys, caplog):
    root = make_mvtec(tmp_path / "data", classes=("capsule",), train=1, good=1, bad=1)
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "config.toml").write_text("image_long_side = 160\n")
    _echoing_errors(key_in_environment, statuses=(500, 503))
    key_in_environment.enqueue_malformed(f'{{"error": "{CANARY}"')
    code = main(["--home", str(tmp_path / "home"), "eval", str(root), "--format", "mvtec", "--strategies", "naive",
                 "--concurrency", "1", "--out", str(tmp_path / "out"), "--quiet", "--json"])
    out, err = capsys.readouterr()
    assert code == 0 and (tmp_path / "out" / "report.md").is_file() and _key_was_sent(key_in_environment)
    assert find_canary([tmp_path], [out, err, *_logs(caplog)]) == []


@pytest.mark.parametrize("statuses", [(401,), (500, 500, 500, 500)], ids=["rejected key", "server errors"])
def test_chat_with_backend_errors_never_shows_the_key(key_in_environment, tmp_path, picture, caplog, statuses):
    settings = load_settings({"home": str(tmp_path / "home"), "max_retries": 3})
    _echoing_errors(key_in_environment, statuses)
    from knowledge.store import KnowledgeBase

    kb = KnowledgeBase.open(settings.kb_dir)
    conversation = Conversation(settings, SINGLE_USER, lambda: kb, tmp_path / "chat-files")
    *_, messages = conversation.turn("is anything wrong?", [str(picture)], class_name="widget")
    kb.close()
    assert messages[-1]["content"].startswith("⚠️") and _key_was_sent(key_in_environment)
    assert find_canary([tmp_path], [json.dumps(messages, default=str), *_logs(caplog)]) == []


def test_the_app_page_never_holds_the_key(key_in_environment, tmp_path):
    import ui

    settings = load_settings({"home": str(tmp_path / "home")})
    assert settings.openai_api_key.reveal() == CANARY  # the app really has the key
    demo = ui.build_app(settings)
    page = json.dumps(demo.get_config_file(), default=str, ensure_ascii=False)
    assert "OpenAI key: set ✓" in page and find_canary([], [page, repr(settings), str(settings)]) == []


# -- the Secret type: not a string, one explicit way out -------------------------------------------
def test_a_secret_is_not_a_string_and_reveal_is_its_only_way_out():
    from assistant.config import Secret

    key = Secret(CANARY)
    assert not isinstance(key, str) and key.reveal() == CANARY
    assert bool(key) and not Secret("")


@pytest.mark.parametrize("show", [str, repr, lambda k: f"{k}", lambda k: f"{k!r}", lambda k: f"{k:>40}",
                                  lambda k: "{}".format(k), lambda k: "%s %r" % (k, k),  # noqa: UP031, UP032
                                  lambda k: json.dumps({"key": k}, default=str), lambda k: str([k, {"k": k}])],
                         ids=["str", "repr", "f-string", "f-string !r", "f-string spec", "format", "percent",
                              "json default=str", "inside containers"])
def test_a_secret_masks_itself_however_it_is_formatted(show):
    from assistant.config import Secret

    shown = show(Secret(CANARY))
    assert CANARY not in shown and "***" in shown


@pytest.mark.parametrize("leak", [lambda k: json.dumps({"key": k}), lambda k: "Bearer " + k, lambda k: k + "x",
                                  lambda k: "".join(["Bearer ", k]), lambda k: __import__("pickle").dumps(k),
                                  lambda k: "sk-x".replace("x", k), lambda k: k.encode()],
                         ids=["json.dumps", "str + secret", "secret + str", "join", "pickle", "as a str argument",
                              "encode"])
def test_a_secret_refuses_to_become_text_by_accident(leak):
    from assistant.config import Secret

    with pytest.raises((TypeError, AttributeError)):
        leak(Secret(CANARY))


def test_a_secret_in_a_log_record_is_masked(caplog):
    from assistant.config import Secret

    caplog.set_level(logging.DEBUG)
    logging.getLogger("anomaly-chat.test").debug("key %s, %r, %d chars", Secret(CANARY), Secret(CANARY), 3)
    assert find_canary([], _logs(caplog)) == [] and "***" in _logs(caplog)[0]


def test_settings_dumped_as_json_never_hold_the_key(tmp_path):
    import dataclasses

    settings = load_settings({"home": str(tmp_path), "openai_api_key": CANARY, "gemini_api_key": CANARY}, env={})
    dumped = json.dumps(dataclasses.asdict(settings), default=str)
    assert find_canary([], [dumped, repr(settings), str(settings), f"{settings}"]) == []


# -- more paths: the terminal chat's transcript, a Gemini key, a successful conversation at DEBUG -------
def test_cli_chat_transcript_never_shows_the_key(key_in_environment, tmp_path, picture, capsys, caplog, monkeypatch):
    import io
    import sys

    lines = [f"/file {picture} is anything wrong?", "why?", "remember that the widget is always blue", "/quit"]
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(lines) + "\n"))
    assert main(["--home", str(tmp_path / "home"), "--debug", "chat", "--class", "widget"]) == 0
    _echoing_errors(key_in_environment)
    monkeypatch.setattr(sys, "stdin", io.StringIO("why?\n/quit\n"))
    assert main(["--home", str(tmp_path / "home"), "--debug", "chat"]) == 0
    out, err = capsys.readouterr()
    assert "error:" in out and _key_was_sent(key_in_environment)
    assert find_canary([tmp_path], [out, err, *_logs(caplog)]) == []


def test_gemini_key_never_shows_in_output_logs_or_errors(monkeypatch, gemini_server, tmp_path, picture, capsys,
                                                         caplog, fast_backoff):
    from tests.helpers.fake_gemini import error_body as google_error

    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(f'gemini_base_url = "{gemini_server.url}"\n')
    monkeypatch.setenv("GEMINI_API_KEY", CANARY)
    caplog.set_level(logging.DEBUG)
    ok = main(["--home", str(home), "--debug", "ask", str(picture), "--class", "widget", "--backend", "gemini",
               "--json"])
    failed = []
    for statuses in ((401,), (500, 500, 500, 500)):
        for status in statuses:
            gemini_server.enqueue_json(google_error(status, f"API key not valid: {CANARY}"), status)
        failed.append(main(["--home", str(home), "--debug", "ask", str(picture), "--class", "widget",
                            "--backend", "gemini"]))
    out, err = capsys.readouterr()
    assert (ok, failed, gemini_server.pending) == (0, [2, 1], 0) and any(r.credential_is("x-goog-api-key", CANARY) for r in gemini_server.requests)
    assert find_canary([tmp_path], [out, err, *_logs(caplog)]) == []


def test_a_successful_chat_in_the_app_logs_nothing_of_the_key_at_debug(key_in_environment, tmp_path, picture,
                                                                        caplog):
    from knowledge.store import KnowledgeBase

    settings = load_settings({"home": str(tmp_path / "home")})
    kb = KnowledgeBase.open(settings.kb_dir)
    conversation = Conversation(settings, SINGLE_USER, lambda: kb, tmp_path / "chat-files")
    *_, first = conversation.turn("is anything wrong?", [str(picture)], class_name="widget")
    *_, second = conversation.turn("why?", [])
    kb.close()
    assert "⚠️" not in json.dumps(second) and _key_was_sent(key_in_environment)
    assert find_canary([tmp_path], [json.dumps(first + second, default=str), *_logs(caplog)]) == []


def test_a_password_in_the_configured_base_url_never_reaches_the_app_page(tmp_path):
    import ui

    url = f"http://inspector:{CANARY}@127.0.0.1:9/v1?token={CANARY}"
    settings = load_settings({"home": str(tmp_path / "home"), "openai_base_url": url}, env={})
    page = json.dumps(ui.build_app(settings).get_config_file(), default=str, ensure_ascii=False)
    assert "http://127.0.0.1:9/v1" in page and find_canary([], [page]) == []
