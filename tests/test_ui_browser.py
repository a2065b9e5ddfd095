"""A real conversation in a real browser: Chromium (headless, driven by Playwright) against the app.

Uploads a picture of the demo bracket, asks, waits for the verdict badge and the heatmap, asks a
follow-up, teaches a rule and finds it in the knowledge panel. Screenshots go to the test's folder and, when
ANOMALY_CHAT_SCREENSHOTS is set (e.g. docs/images), there as well, for the README:

    ANOMALY_CHAT_SCREENSHOTS=docs/images .venv/bin/pytest -m browser tests/test_ui_browser.py
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

from assistant.app.demo_data import DEMO_CLASS, ensure_demo_data
from assistant.config import load_settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-default-apps",
                  "--disable-extensions", "--metrics-recording-only", "--no-default-browser-check"]
ROOT = Path(__file__).resolve().parents[1]
TAUGHT_RULE = "The centre bore has a bright chamfer ring all around."
FIRST_ANSWER_TIMEOUT_MS = 240_000  # the first message opens the knowledge base and loads the embedding model

pytestmark = [pytest.mark.browser, pytest.mark.slow]
if not CHROMIUM.exists():
    pytest.skip("Chromium is not installed at /usr/bin/chromium (Debian: apt-get install -y chromium)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """The app, single-user, offline backend, with the demo bracket's references and a rule stored."""
    import ui
    from assistant.commands.common import open_kb

    root = tmp_path_factory.mktemp("ui_browser")
    patch = pytest.MonkeyPatch()
    patch.setenv("GRADIO_TEMP_DIR", str(root / "gradio"))
    settings = load_settings({"home": str(root / "home"), "backend": "offline"}, env={})
    demo_files = ensure_demo_data(settings.home)
    kb = open_kb(settings)
    for path in demo_files.references:
        kb.add_reference(DEMO_CLASS, path, author="quality lead")
    kb.add_rule(DEMO_CLASS, "A normal bracket has four open corner holes and one centre bore.", author="quality lead")
    kb.add_rule(DEMO_CLASS, "Scratches, dents or rust on the plate are defects.", kind="defect", author="quality lead")
    demo = ui.build_app(settings)
    _, url, _ = ui.launch(demo, settings, "127.0.0.1", _free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield url, demo_files
    finally:
        demo.close()
        patch.undo()


class Screenshots:
    """Saves into the test's folder and, if ANOMALY_CHAT_SCREENSHOTS is set, there too."""

    def __init__(self, page, folder: Path):
        self.page, self.folder = page, folder
        extra = os.environ.get("ANOMALY_CHAT_SCREENSHOTS")
        self.extra = (Path(extra) if Path(extra).is_absolute() else ROOT / extra) if extra else None

    def take(self, name: str, **kwargs) -> Path:
        path = self.folder / f"ui-{name}.png"
        self.page.screenshot(path=str(path), **kwargs)
        if self.extra is not None:
            self.extra.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, self.extra / path.name)
        return path


def _loopback_only(route) -> None:
    """Nothing leaves the machine: requests to anything but the app are refused."""
    if route.request.url.startswith(("http://127.0.0.1", "data:", "blob:")):
        route.continue_()
    else:
        route.abort()


def _send(page, text: str) -> None:
    box = page.locator("textarea").first
    box.fill(text)
    box.press("Enter")


def _wait_until_idle(page, timeout_ms: int) -> None:
    """The chat's textbox is editable again when the turn has finished."""
    sync_api.expect(page.locator("textarea").first).to_be_editable(timeout=timeout_ms)


def test_a_conversation_in_the_browser_shows_verdict_heatmap_follow_up_and_taught_rule(app_url, tmp_path):
    url, demo_files = app_url
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1280}, device_scale_factor=1)
            page.route("**/*", _loopback_only)
            shots = Screenshots(page, tmp_path)
            page.goto(url)
            sync_api.expect(page.get_by_text("Single-user mode")).to_be_visible(timeout=60_000)

            class_input = page.get_by_label("Class", exact=True).first  # not the "class information" switch
            class_input.fill(DEMO_CLASS)
            class_input.press("Enter")
            page.locator("input[type=file]").first.set_input_files(str(demo_files.defective))
            sync_api.expect(page.locator("textarea").first).to_be_editable()
            _send(page, "Is anything wrong with this bracket?")

            badge = page.locator(".verdict-badge")
            sync_api.expect(badge).to_be_visible(timeout=FIRST_ANSWER_TIMEOUT_MS)
            assert "ANOMALOUS" in badge.inner_text()
            heatmap = page.locator("xpath=//em[contains(., 'heatmap')]/following::img[1]")  # the picture under its caption
            sync_api.expect(heatmap.first).to_be_visible()
            _wait_until_idle(page, 60_000)
            assert page.evaluate("img => img.naturalWidth", heatmap.first.element_handle()) > 0
            shots.take("verdict")

            bot_messages = page.locator(".message-row.bot-row")
            before = bot_messages.count()
            _send(page, "Why do you think so? Where exactly is it?")
            _wait_until_idle(page, 60_000)
            sync_api.expect(bot_messages).not_to_have_count(before)
            answer = bot_messages.last.inner_text()
            assert answer.strip() and "⚠️" not in answer and "Traceback" not in answer
            shots.take("conversation")  # the README shows this one

            _send(page, f"rule for {DEMO_CLASS}: {TAUGHT_RULE}")
            _wait_until_idle(page, 60_000)
            page.get_by_role("tab", name="Knowledge").click()
            for text in ("Scratches, dents or rust on the plate are defects.", TAUGHT_RULE):  # seeded, then taught
                sync_api.expect(page.get_by_role("gridcell", name=text)).to_be_visible(timeout=30_000)
            shots.take("knowledge")
        finally:
            browser.close()
    assert sorted(p.name for p in tmp_path.glob("ui-*.png")) == ["ui-conversation.png", "ui-knowledge.png",
                                                                  "ui-verdict.png"]
