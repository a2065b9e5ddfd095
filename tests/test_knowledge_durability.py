"""Durability: concurrent writers lose nothing, a killed import leaves a consistent store, repair works.

The multi-process tests use real subprocesses on an embedded store (the case where the file lock
matters); the repair tests run on both the embedded store and the server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from knowledge.store import KnowledgeBase
from tests.fixtures_knowledge import make_image, save_image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHILD_ENV = {**os.environ, "PYTHONPATH": ROOT, "ANONYMIZED_TELEMETRY": "False", "HF_HUB_OFFLINE": "1"}


def _python(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], cwd=ROOT, env=CHILD_ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _assert_consistent(kb: KnowledgeBase) -> None:
    """No record without its file, no file without a record, no leftovers."""
    referenced = {s.path for c in kb.classes() for s in kb.references(c)}
    assert all(path.is_file() for path in referenced)
    stored = set((kb.path / "files").rglob("*.*")) if (kb.path / "files").exists() else set()
    assert stored == referenced
    assert not (kb.path / "tmp").exists() or not any((kb.path / "tmp").iterdir())


# Each writer stores its 500 rules in 100 write transactions (one single rule, then a batch of
# nine, in turn): enough interleavings to catch a lost write, at a fifth of the time that 500
# separate embeddings and Chroma commits per process take on a busy two-core machine. Both wait
# at a barrier after start-up, so that their writes really overlap.
WRITER = """
    import sys, time
    from pathlib import Path
    from knowledge.store import KnowledgeBase
    path, tag = sys.argv[1], sys.argv[2]
    kb = KnowledgeBase.open(path)
    kb.search_rules("warm up the text model", k=1)
    Path(path, "ready-" + tag).touch()
    while not Path(path, "go").exists():
        time.sleep(0.01)
    for start in range(0, 500, 10):
        kb.add_rule("concurrency", f"Writer {tag} says rule number {start} holds.")
        kb.add_rules("concurrency", [f"Writer {tag} says rule number {i} holds." for i in range(start + 1, start + 10)])
    print(kb._connection.reloads)
"""


@pytest.mark.slow
def test_two_processes_adding_500_rules_each_lose_none(tmp_path):
    path = tmp_path / "kb"
    KnowledgeBase.open(path).close()  # seeded first: the writers need not race to seed
    writers = [_python(WRITER, str(path), tag) for tag in ("A", "B")]
    deadline = time.monotonic() + 240
    while not all((path / f"ready-{tag}").exists() for tag in "AB"):
        assert time.monotonic() < deadline and all(w.poll() is None for w in writers), "a writer did not start"
        time.sleep(0.05)
    (path / "go").touch()
    reloads = []
    for writer in writers:
        out, err = writer.communicate(timeout=240)
        assert writer.returncode == 0, err[-2000:]
        reloads.append(int(out.split()[-1]))
    assert min(reloads) >= 10  # each saw the other's writes many times: the writes did interleave
    kb = KnowledgeBase.open(path)
    texts = [r.text for r in kb.rules("concurrency")]
    expected = {f"Writer {tag} says rule number {i} holds." for tag in "AB" for i in range(500)}
    assert len(texts) == 1000 and set(texts) == expected
    assert kb.search_rules("Writer B says rule number 250 holds.", k=1, class_name="concurrency")[0][0].text == (
        "Writer B says rule number 250 holds.")


KILLED_IMPORT = """
    import sys, time
    import knowledge.files as files
    from knowledge.store import KnowledgeBase

    def stall(*args, **kwargs):
        print("stalled", flush=True)
        time.sleep(120)

    if sys.argv[3] == "after_file_written":
        real_adopt = files.FileStore.adopt
        written = []
        def adopt(self, tmp_path, relative):
            real_adopt(self, tmp_path, relative)
            written.append(relative)
            if len(written) == 3:
                stall()
        files.FileStore.adopt = adopt
    else:  # while a file is being copied, before its rename
        real_copy = files.shutil.copyfileobj
        def copy(src, dst, length=0):
            real_copy(src, dst, length)
            stall()
        files.shutil.copyfileobj = copy
    kb = KnowledgeBase.open(sys.argv[1])
    kb.import_references(sys.argv[2], "widget")
"""


@pytest.mark.parametrize("moment", ["after_file_written", "while_copying"])
def test_import_killed_midway_leaves_a_consistent_store(tmp_path, moment):
    path = tmp_path / "kb"
    KnowledgeBase.open(path).close()  # seeded beforehand: the child then needs no text model
    folder = tmp_path / "good"
    for seed in range(6):
        save_image(make_image(seed), folder / f"{seed}.png")
    child = _python(KILLED_IMPORT, str(path), str(folder), moment)
    try:
        assert child.stdout.readline().strip() == "stalled", child.stderr.read()[-2000:]
        leftovers = list((path / "files").rglob("*.png")) + list((path / "tmp").glob("*"))
        assert leftovers  # the kill really happens with something half done
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    kb = KnowledgeBase.open(path)
    _assert_consistent(kb)
    assert kb.references("widget") == []
    assert len(kb.import_references(folder, "widget")) == 6
    _assert_consistent(kb)


@pytest.mark.slow
def test_collections_reopen_in_a_new_process_without_passing_the_embedding_function(tmp_path):
    path = tmp_path / "kb"
    KnowledgeBase.open(path).add_rule("widget", "Every box holds exactly three blue marbles.")
    child = _python("""
        import sys, chromadb
        import knowledge.embedding  # registers the embedding function under its name
        from knowledge.chroma import RULES, chroma_settings
        client = chromadb.PersistentClient(path=sys.argv[1] + "/chroma", settings=chroma_settings())
        found = client.get_collection(RULES).query(query_texts=["marbles in a box"], n_results=1)
        print(found["documents"][0][0])
    """, str(path))
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err[-2000:]
    assert out.strip() == "Every box holds exactly three blue marbles."


def test_repair_removes_orphan_and_temporary_files(kb, image_file):
    sample = kb.add_reference("widget", image_file(1))
    orphan = kb.path / "files" / "ab" / ("ab" + "0" * 62 + ".png")
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"left behind")
    (kb.path / "tmp").mkdir(exist_ok=True)
    (kb.path / "tmp" / "x.part").write_bytes(b"half")
    assert kb.repair() == {"records_removed": 0, "files_removed": 1, "temp_files_removed": 1}
    assert not orphan.exists() and sample.path.is_file()
    _assert_consistent(kb)


def test_repair_drops_records_whose_file_is_missing_or_truncated(kb, image_file):
    gone = kb.add_reference("widget", image_file(1))
    cut = kb.add_reference("widget", image_file(2))
    kept = kb.add_reference("widget", image_file(3))
    gone.path.unlink()
    cut.path.write_bytes(cut.path.read_bytes()[:10])
    assert kb.repair()["records_removed"] == 2
    assert kb.references("widget") == [kept]
    _assert_consistent(kb)


def test_repair_with_hash_check_finds_same_size_corruption(kb, image_file):
    sample = kb.add_reference("widget", image_file(1))
    data = bytearray(sample.path.read_bytes())
    data[-5] ^= 0xFF
    sample.path.write_bytes(bytes(data))
    assert kb.repair()["records_removed"] == 0
    assert kb.repair(verify_hashes=True)["records_removed"] == 1
    assert kb.references("widget") == []


def test_open_repairs_automatically(open_kb, image_file):
    sample = open_kb().add_reference("widget", image_file(1))
    sample.path.unlink()
    assert open_kb().references("widget") == []


OTHER_WRITER = """
    import sys
    import numpy as np
    import knowledge.embedding as embedding
    from knowledge.store import KnowledgeBase

    # This child only has to write; a fixed vector spares it loading the text model.
    embedding.embed_texts = lambda texts, model_path=None: [np.full(384, 384 ** -0.5, np.float32) for _ in texts]
    KnowledgeBase.open(sys.argv[1]).add_rule("widget", "Written by another process.")
"""


def test_an_open_store_sees_what_another_process_wrote(tmp_path):
    kb = KnowledgeBase.open(tmp_path / "kb")
    assert kb.search_rules("anything", k=3, class_name="widget") == []
    child = _python(OTHER_WRITER, str(tmp_path / "kb"))
    _, err = child.communicate(timeout=120)
    assert child.returncode == 0, err[-2000:]
    assert [r.text for r in kb.rules("widget")] == ["Written by another process."]
    # Without a reload, the filtered vector query fails: Chroma's index in this process is stale.
    assert [r.text for r, _ in kb.search_rules("anything", k=3, class_name="widget")] == [
        "Written by another process."]


def test_another_embedding_model_reembeds_the_stored_rules(tmp_path):
    from knowledge.embedding import default_model_path

    first = KnowledgeBase.open(tmp_path / "kb")
    rule = first.add_rule("widget", "Every box holds three blue marbles.")
    first.close()
    # The same model files under an explicit path count as another model: the rules are re-embedded.
    other = KnowledgeBase.open(tmp_path / "kb", embedding_model_path=str(default_model_path()))
    assert other.get_rule(rule.id) == rule
    assert other.search_rules("marbles in a box", k=1, class_name="widget")[0][0].id == rule.id


def test_missing_embedding_model_directory_is_a_config_error(tmp_path):
    from tools.errors import ConfigError

    with pytest.raises(ConfigError, match="does not exist"):
        KnowledgeBase.open(tmp_path / "kb", embedding_model_path=str(tmp_path / "no-model"))
    assert not (tmp_path / "kb" / "chroma").exists()
