"""The evaluation end to end: offline backend, a fake OpenAI server, the CLI and its exit codes."""

from __future__ import annotations

import json
import time

import pytest

from assistant.cli import main
from assistant.config import load_settings
from assistant.evaluation.datasets import load_dataset
from assistant.evaluation.evaluate import evaluate
from assistant.evaluation.runner import RateLimiter, RunOptions
from tests.fixtures_models import openai_settings_for
from tests.helpers.datasets import (
    ImageBook,
    OracleModel,
    make_folder,
    make_mvtec,
    make_mvtec3d,
    make_nab,
    request_images,
)

pytestmark = pytest.mark.usefixtures("fast_backoff")
LONG_SIDE = 160


@pytest.fixture(scope="module")
def eval_home(tmp_path_factory):
    """A data dir with a seeded knowledge base, opened once for the module (seeding embeds the rules)."""
    from knowledge.store import KnowledgeBase

    path = tmp_path_factory.mktemp("eval_home")
    (path / "config.toml").write_text(f"image_long_side = {LONG_SIDE}\n")  # small pictures: fast tests
    KnowledgeBase.open(load_settings({"home": str(path)}, env={}).kb_dir).close()
    return path


@pytest.fixture(scope="module")
def kb(eval_home):
    from knowledge.store import KnowledgeBase

    store = KnowledgeBase.open(load_settings({"home": str(eval_home)}, env={}).kb_dir)
    yield store
    store.close()


@pytest.fixture(scope="module")
def mvtec(tmp_path_factory):
    return make_mvtec(tmp_path_factory.mktemp("mvtec"), classes=("capsule", "pill"), train=3, good=2, bad=2)


def offline_settings(eval_home):
    return load_settings({"home": str(eval_home), "backend": "offline"}, env={})


@pytest.fixture(scope="module")
def offline_run(eval_home, kb, tmp_path_factory):
    """One offline evaluation of a small MVTec-format set with two strategies, and the files each analysis got."""
    from assistant.session import Session

    received, real_send = [], Session.send

    def recording_send(self, text="", files=(), **kwargs):
        received.append([str(f) for f in files])
        return real_send(self, text, files, **kwargs)

    patch = pytest.MonkeyPatch()
    patch.setattr(Session, "send", recording_send)
    try:
        # "first" references: one reference set per class, so the expert fits each class once (fast)
        options = RunOptions(["rules+reference", "naive"], shots=2, ref_choice="first", concurrency=2, progress=False)
        out = tmp_path_factory.mktemp("offline_out")
        root = make_mvtec(tmp_path_factory.mktemp("small"), classes=("capsule", "pill"), train=3, good=1, bad=1)
        result = evaluate(load_dataset(root, "mvtec"), offline_settings(eval_home), kb, options, out)
    finally:
        patch.undo()
    return result, received, root


def test_offline_run_writes_every_output(offline_run):
    result, _, _ = offline_run
    out = result.out_dir
    for name in ("results.jsonl", "metrics.json", "metrics.csv", "run.json", "report.md",
                 "bars_rules+reference.png", "roc_naive.png"):
        assert (out / name).is_file(), name
    assert (out / "roc_naive.png").read_bytes()[:4] == b"\x89PNG"
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics) == ["rules+reference", "naive"]
    capsule = metrics["naive"]["per_class"]["capsule"]
    assert capsule["n"] == 2 and {"acc", "auroc", "aupr"} <= set(capsule)
    assert set(metrics["naive"]) == {"per_class", "mean", "pooled"}
    assert len((out / "results.jsonl").read_text().splitlines()) == 8


def test_offline_run_finds_the_pasted_defects(offline_run):
    result, _, _ = offline_run
    pooled = result.metrics["rules+reference"]["pooled"]
    assert pooled["auroc"] >= 0.75, pooled
    # every item is ranked by the expert's continuous score (the offline backend states no confidence)
    assert pooled["score_sources"] == {"logprobs": 0, "confidence": 0, "expert": 4, "verdict": 0, "none": 0}
    assert (pooled["ranked_source"], pooled["mapped"], pooled["neutral"]) == ("expert", 0, 0)


def test_offline_run_reports_pixel_auroc_and_box_hits_per_class(offline_run):
    result, _, _ = offline_run
    capsule = result.metrics["rules+reference"]["per_class"]["capsule"]
    assert capsule["pixel_auroc"] > 0.8 and capsule["boxes_checked"] >= 1
    text = (result.out_dir / "report.md").read_text()
    assert "## Localisation (per class)" in text and "| rules+reference | capsule |" in text


def test_report_has_the_paper_layout_and_says_how_no_verdicts_are_scored(offline_run):
    result, _, _ = offline_run
    text = (result.out_dir / "report.md").read_text()
    assert "| class | rules+reference ACC | rules+reference AUROC | rules+reference AUPR | naive ACC" in text
    assert "| capsule |" in text and "**mean over classes**" in text and "pooled (all items together)" in text
    assert "count as wrong" in text and "GPT-4V, rules + reference (paper, Table I mean) | 0.842 | 0.829 | 0.593" in text
    assert "arXiv:2403.11083, Table I" in text and "train/good" in text
    computed = text.split("## How each number is computed", 1)[1]
    assert all(word in computed for word in ("ACC:", "AUROC:", "AUPR", "Answered only", "mean over classes", "pooled",
                                              "--limit", "knowledge fingerprint"))
    assert "## Answered items only" in text and "## Score sources per class" in text and "## Knowledge used" in text


def test_references_given_to_the_session_are_training_normals_only(offline_run):
    _, received, _ = offline_run
    assert len(received) == 8
    for query, *references in received:
        assert "/test/" in query
        assert len(references) == 2
        assert all("/train/good/" in r for r in references)
        assert query.split("/")[-4] == references[0].split("/")[-4]  # same class


def test_results_record_the_references_and_scores(offline_run):
    result, _, _ = offline_run
    rows = result.outcome.rows
    assert all(r["references"] and all(p.split("/")[1:3] == ["train", "good"] for p in r["references"]) for r in rows)
    assert all(r["status"] == "ok" and r["score"] is not None and r["score_source"] for r in rows)


def test_a_second_run_takes_everything_from_the_cache(eval_home, kb, offline_run):
    result, _, root = offline_run
    options = RunOptions(["rules+reference", "naive"], shots=2, ref_choice="first", concurrency=2, progress=False)
    again = evaluate(load_dataset(root, "mvtec"), offline_settings(eval_home), kb, options, result.out_dir)
    assert (again.outcome.ran, again.outcome.cached) == (0, 8)
    assert again.metrics == result.metrics


def test_results_are_not_reused_after_the_rules_or_the_references_change(eval_home, kb, tmp_path):
    root = make_mvtec(tmp_path / "widgets", classes=("widget",), train=2, good=1, bad=1)
    options = RunOptions(["naive"], shots=1, ref_choice="first", concurrency=2, progress=False)

    def run():
        return evaluate(load_dataset(root, "mvtec"), offline_settings(eval_home), kb, options, tmp_path / "out")

    first = run()
    assert (first.outcome.ran, run().outcome.ran) == (2, 0)  # unchanged knowledge: reused
    rule = kb.add_rule("widget", "the widget has two holes")
    try:
        after_rule = run()
    finally:
        kb.delete_rule(rule.id)
    assert after_rule.outcome.ran == 2
    assert after_rule.info["knowledge_fingerprints"]["widget"] != first.info["knowledge_fingerprints"]["widget"]
    run_json = json.loads((after_rule.out_dir / "run.json").read_text())
    assert run_json["knowledge_fingerprint"] == after_rule.info["knowledge_fingerprint"]
    assert {r["knowledge"] for r in after_rule.outcome.rows} == {run_json["knowledge_fingerprints"]["widget"]}
    assert run_json["score_sources"]["naive"] == {"ranked_source": "expert", "mix": {
        "logprobs": 0, "confidence": 0, "expert": 2, "verdict": 0, "none": 0}}
    (root / "widget" / "train" / "good" / "000.png").write_bytes((root / "widget" / "train" / "good" / "001.png").read_bytes())
    assert run().outcome.ran == 2  # a reference file changed


def test_a_run_leaves_the_global_random_state_alone(eval_home, kb, offline_run):
    import random

    import numpy as np

    result, _, root = offline_run
    random.seed(12345)
    np.random.seed(54321)
    before = random.getstate(), np.random.get_state()[1].copy()
    options = RunOptions(["naive"], shots=2, ref_choice="first", concurrency=2, progress=False, seed=7)
    evaluate(load_dataset(root, "mvtec"), offline_settings(eval_home), kb, options, result.out_dir)
    assert random.getstate() == before[0]
    assert (np.random.get_state()[1] == before[1]).all()


def test_fake_server_run_counts_an_unreadable_reply_and_sends_only_training_references(eval_home, kb, mvtec, tmp_path):
    from tests.helpers.fake_openai import FakeOpenAIServer

    oracle = OracleModel(ImageBook(mvtec, LONG_SIDE), unreadable={"capsule/test/good/001.png"})
    with FakeOpenAIServer() as server:
        server.set_default(oracle, delay=0.1)
        settings = openai_settings_for(server, eval_home, backend="openai", model="gpt-4o-mini")
        options = RunOptions(["rules+reference"], shots=1, ref_choice="first", concurrency=4, progress=False)
        result = evaluate(load_dataset(mvtec, "mvtec"), settings, kb, options, tmp_path / "out")
        requests = len(server.requests)
        assert server.max_in_flight > 1
    pooled = result.metrics["rules+reference"]["pooled"]
    assert (pooled["unparsed"], pooled["acc"], pooled["excluded"], pooled["neutral"]) == (1, 7 / 8, 1, 1)
    # the unreadable normal is ranked at 0.5, above the other normals (0.1), below the anomalies (0.9)
    assert pooled["auroc"] == 1.0 and pooled["answered_only"]["auroc"] == 1.0
    assert pooled["confusion"]["no_verdict_normal"] == 1
    assert requests == 9  # 8 analyses and one repair request for the unreadable reply
    parsed = [r for r in result.outcome.rows if r["status"] == "ok"]
    assert all(r["usage"] == {"input_tokens": 11, "output_tokens": 7} for r in parsed)  # the fake's usage per call
    assert result.info["usage"]["input_tokens"] >= 11 * len(parsed) and result.info["cost_usd"] > 0
    assert {s["query"] for s in oracle.seen} == {r["item"] for r in result.outcome.rows}
    for seen in oracle.seen:
        assert seen["references"] == [f"{seen['query'].split('/')[0]}/train/good/000.png"]


def test_leave_one_out_never_sends_an_item_as_its_own_reference(eval_home, kb, tmp_path):
    from tests.helpers.fake_openai import FakeOpenAIServer

    root = make_folder(tmp_path / "folder", good=3, bad=1)
    oracle = OracleModel(ImageBook(root, LONG_SIDE))
    with FakeOpenAIServer() as server:
        server.set_default(oracle)
        settings = openai_settings_for(server, eval_home, backend="openai")
        options = RunOptions(["reference"], shots=2, concurrency=2, progress=False)
        result = evaluate(load_dataset(root, "folder"), settings, kb, options, tmp_path / "out")
    assert len(oracle.seen) == 4
    for seen in oracle.seen:
        assert seen["query"] not in seen["references"] and len(seen["references"]) == 2
        assert all(r.startswith("capsule/good/") for r in seen["references"])
    assert "leave-one-out" in (result.out_dir / "report.md").read_text()


def test_series_run_reports_window_hits_and_false_alarms(eval_home, kb, tmp_path):
    root = make_nab(tmp_path / "nab", normal=2, spiky=2)
    options = RunOptions(["rules"], shots=1, concurrency=2, progress=False)
    result = evaluate(load_dataset(root, "nab"), offline_settings(eval_home), kb, options, tmp_path / "out")
    windows = result.metrics["rules"]["pooled"]["windows"]
    assert windows["labelled"] == 2 and windows["hits"] == 2
    assert result.metrics["rules"]["pooled"]["auroc"] == 1.0
    assert "Series windows" in (result.out_dir / "report.md").read_text()


def test_series_are_sent_to_the_model_as_plots_and_still_get_window_counts(eval_home, kb, tmp_path):
    from tests.helpers.fake_openai import FakeOpenAIServer

    root = make_nab(tmp_path / "nab", normal=1, spiky=1)
    with FakeOpenAIServer() as server:  # answers "normal, confidence 0.1" to everything
        settings = openai_settings_for(server, eval_home, backend="openai")
        options = RunOptions(["rules"], concurrency=2, progress=False)
        result = evaluate(load_dataset(root, "nab"), settings, kb, options, tmp_path / "out")
        sent = [request_images(r) for r in server.requests]
    assert len(sent) == 2 and all(set(images) == {"query"} for images in sent)  # a plot, no references
    pooled = result.metrics["rules"]["pooled"]
    assert (pooled["acc"], pooled["confusion"]["fn"], pooled["confusion"]["tn"]) == (0.5, 1, 1)
    assert pooled["windows"]["labelled"] == 1


def test_mvtec3d_run_localises_in_the_sensor_grid(eval_home, tmp_path, capsys):
    """`eval --format mvtec3d`: the 3-D expert's per-point map is scored against the masks cell by cell."""
    root = make_mvtec3d(tmp_path / "mvtec3d", train=3, good=2, bad=2)
    code = main(["--home", str(eval_home), "eval", str(root), "--format", "mvtec3d", "--backend", "offline", "--shots", "3",
                 "--ref-choice", "first", "--out", str(tmp_path / "out"), "--json", "--quiet"])
    summary = json.loads(capsys.readouterr().out)
    pooled = summary["metrics"]["class+rules+reference+expert"]["pooled"]
    assert code == 0 and pooled["auroc"] == 1.0 and pooled["pixel_items"] == 4
    assert pooled["pixel_auroc"] > 0.9
    assert pooled["boxes_checked"] == 2 and pooled["box_hits"] == 2  # the regions' boxes in the grid, not on the render
    rows = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert all(r["score_source"] == "expert" and r["pixels"]["normal"] for r in rows)
    report = (tmp_path / "out" / "report.md").read_text()
    assert "pixel AUROC" in report and "never compared with these masks" in report


def test_cli_prints_a_json_summary(eval_home, mvtec, tmp_path, capsys):
    code = main(["--home", str(eval_home), "eval", str(mvtec), "--format", "mvtec", "--backend", "offline",
                 "--classes", "pill", "--limit", "2", "--ref-choice", "first", "--out", str(tmp_path / "out"), "--json", "--quiet"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0
    assert summary["run"]["items"] == 2 and summary["run"]["classes"] == 1
    assert set(summary["metrics"]) == {"class+rules+reference+expert"}
    pooled = summary["metrics"]["class+rules+reference+expert"]["pooled"]
    assert {"acc", "auroc", "aupr"} <= set(pooled["answered_only"]) and pooled["ranked_source"] == "expert"
    assert sum(pooled["score_sources"].values()) == 2
    assert len(summary["run"]["knowledge_fingerprint"]) == 16 and set(summary["run"]["knowledge_fingerprints"]) == {"pill"}


@pytest.mark.parametrize("args, message", [
    (["/no/such/folder", "--format", "mvtec"], "does not exist"),
    ([".", "--format", "coco"], "unknown format 'coco'"),
    ([".", "--format", "folder", "--strategies", "rules+vibes"], "unknown strategy"),
])
def test_cli_bad_input_exits_2_with_one_line(eval_home, args, message, capsys):
    code = main(["--home", str(eval_home), "eval", *args, "--backend", "offline"])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1


def test_cli_backend_failure_exits_1(eval_home, mvtec, tmp_path, capsys):
    from tests.helpers.fake_http import json_reply
    from tests.helpers.fake_openai import FakeOpenAIServer, error_body

    with FakeOpenAIServer() as server:
        server.set_default(lambda request: json_reply(error_body("overloaded", "server_error"), 500))
        code = main(["--home", str(eval_home), "eval", str(mvtec), "--format", "mvtec", "--backend", "openai",
                     "--base-url", server.url + "/v1", "--strategies", "naive", "--concurrency", "1",
                     "--out", str(tmp_path / "out"), "--quiet"])
    assert code == 1
    assert "backend error" in capsys.readouterr().err


def test_rate_limiter_spaces_the_starts():
    limiter = RateLimiter(per_minute=600)  # one start every 0.1 s
    started = time.monotonic()
    for _ in range(4):
        limiter.wait()
    assert time.monotonic() - started >= 0.29
