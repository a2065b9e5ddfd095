"""The whole journey in a real browser: Chromium (headless, driven by Playwright) against the app, at 1366x768.

Three reference normals stored at once from the chat (offered, then confirmed with a button), an
inspection whose verdict and picture are seen together, "why?", "where exactly?" and "compare" with
their crops on screen, a rule taught in the chat, a reference uploaded and one removed in the
knowledge panel, a reload that finds the conversation (and continues it), an earlier conversation
reopened from the History tab, and the inspection log exported as CSV. Screenshots go to the test's
folder and, when ANOMALY_CHAT_SCREENSHOTS is set (e.g. docs/images), there as well, for the README:

    ANOMALY_CHAT_SCREENSHOTS=docs/images .venv/bin/pytest -m browser tests/test_ui_browser.py
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
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
VIEWPORT = {"width": 1366, "height": 768}
TAUGHT_RULE = "The centre bore has a bright chamfer ring all around."
SEEDED_RULES = ("A normal bracket has four open corner holes and one centre bore.",
                "Scratches, dents or rust on the plate are defects.")
FIRST_ANSWER_TIMEOUT_MS = 240_000  # the first message opens the knowledge base and loads the embedding model
TURN_TIMEOUT_MS = 90_000
SCREENSHOTS = ["ui-compare.png", "ui-conversation.png", "ui-history.png", "ui-knowledge.png", "ui-references.png",
               "ui-verdict.png", "ui-where.png"]

pytestmark = [pytest.mark.browser, pytest.mark.slow]
if not CHROMIUM.exists():
    pytest.skip("Chromium is not installed at /usr/bin/chromium (Debian: apt-get install -y chromium)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
expect = sync_api.expect


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """The app, single-user, offline backend, with the demo bracket's rules stored and no reference yet."""
    import ui
    from assistant.commands.common import open_kb

    root = tmp_path_factory.mktemp("ui_browser")
    patch = pytest.MonkeyPatch()
    patch.setenv("GRADIO_TEMP_DIR", str(root / "gradio"))
    settings = load_settings({"home": str(root / "home"), "backend": "offline"}, env={})
    demo_files = ensure_demo_data(settings.home)
    kb = open_kb(settings)
    kb.add_rule(DEMO_CLASS, SEEDED_RULES[0], author="quality lead")
    kb.add_rule(DEMO_CLASS, SEEDED_RULES[1], kind="defect", author="quality lead")
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

    def take(self, name: str, **options) -> Path:
        path = self.folder / f"ui-{name}.png"
        self.page.screenshot(path=str(path), **options)
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


def _send(page, text: str, files=()) -> None:
    if files:
        page.locator("input[type=file]").first.set_input_files([str(f) for f in files])
    box = page.locator("textarea").first
    expect(box).to_be_editable()
    box.fill(text)
    box.press("Enter")


def _wait_until_idle(page, timeout_ms: int = TURN_TIMEOUT_MS) -> None:
    """The chat's textbox is editable again when the turn has finished."""
    expect(page.locator("textarea").first).to_be_editable(timeout=timeout_ms)


def _ask(page, text: str, answer_starts, files=(), timeout_ms: int = TURN_TIMEOUT_MS):
    """Send a message and wait for the answer that starts so; returns that answer's element."""
    before = page.get_by_text(answer_starts).count()
    _send(page, text, files)
    expect(page.get_by_text(answer_starts)).to_have_count(before + 1, timeout=timeout_ms)
    _wait_until_idle(page)
    page.wait_for_timeout(400)  # the chat scrolls to its end
    return page.get_by_text(answer_starts).last


def _in_chat_view(page, element) -> bool:
    """True when the element is shown whole inside the chat's visible area (and, for a picture, loaded)."""
    return page.evaluate("""el => {
        const chat = document.querySelector('#conversation').getBoundingClientRect();
        const box = el.getBoundingClientRect();
        const loaded = el.tagName !== 'IMG' || el.naturalWidth > 0;
        return loaded && box.height > 20 && box.top >= chat.top - 1 && box.bottom <= chat.bottom + 1; }""",
                         element.element_handle())


def _last_picture(page):
    """The last picture in the chat (what the last answer shows)."""
    return page.locator("#conversation img").last


def _chat_text(page) -> str:
    return page.locator("#conversation").inner_text()


def _references_to_use(page) -> str:
    return page.get_by_label("number input for Reference normals to use").input_value()


def _store_three_references_from_the_chat(page, shots, demo_files) -> None:
    _send(page, f"add these three as reference normals for {DEMO_CLASS}", demo_files.references)
    offer = page.get_by_text(f"Store 3 file(s) as reference normals of {DEMO_CLASS}?")
    expect(offer).to_be_visible(timeout=FIRST_ANSWER_TIMEOUT_MS)
    confirm = page.get_by_role("button", name="Confirm: store them")
    expect(confirm).to_be_visible()
    _wait_until_idle(page)
    shots.take("references")
    confirm.click()
    expect(page.get_by_text("3 stored in all")).to_be_visible(timeout=60_000)
    expect(confirm).to_have_count(0)  # the question is answered: its buttons are gone


def _inspect_and_see_verdict_with_picture(page, shots, demo_files) -> None:
    class_input = page.get_by_label("Class", exact=True).first  # the chat's class box
    class_input.fill(DEMO_CLASS)
    class_input.press("Enter")
    expect(page.get_by_label("number input for Reference normals to use")).to_have_value("3", timeout=30_000)
    _send(page, "Is anything wrong with this bracket?", [demo_files.defective])
    badge = page.locator(".verdict-badge").last
    expect(badge).to_be_visible(timeout=TURN_TIMEOUT_MS)
    _wait_until_idle(page)
    page.wait_for_timeout(600)
    assert "ANOMALOUS" in badge.inner_text()
    picture = page.locator("#conversation .message:has(.verdict-badge) + .message img").last
    assert _in_chat_view(page, badge) and _in_chat_view(page, picture), "verdict and picture seen together"
    shots.take("verdict")


def _why_where_compare_with_crops(page, shots) -> None:
    answer = _ask(page, "why?", "Why ANOMALOUS")
    assert "times as much as the normals differ from one another" in answer.inner_text()
    assert _in_chat_view(page, _last_picture(page)), "the crops of 'why?' are on screen"
    shots.take("conversation")
    answer = _ask(page, "where exactly?", "Where, strongest first")
    assert re.search(r"x 0\.\d\d–0\.\d\d, y 0\.\d\d–0\.\d\d of the image", _chat_text(page))
    assert _in_chat_view(page, _last_picture(page)), "the map of 'where exactly?' is on screen"
    shots.take("where")
    _ask(page, "compare it with the reference", "Compared with 3 reference normal(s)")
    assert _in_chat_view(page, _last_picture(page)), "the side-by-side crops of 'compare' are on screen"
    shots.take("compare")


def _teach_a_rule(page) -> None:
    _ask(page, f"rule for {DEMO_CLASS}: {TAUGHT_RULE}", "Stored rule [")
    text = _chat_text(page)
    assert TAUGHT_RULE in text and "<rules>" not in text and "<file_name>" not in text  # the fence is the model's
    assert not re.search(r"\d\.\d{5,}", text), "no raw floats"
    assert "demo_bracket" not in re.sub(r"ref-demo_bracket-\w+", "", text), "one display form per class name"


def _manage_references_in_the_knowledge_panel(page, shots, demo_files) -> None:
    page.get_by_role("tab", name="Knowledge").click()
    for text in (*SEEDED_RULES, TAUGHT_RULE):
        expect(page.get_by_role("gridcell", name=text)).to_be_visible(timeout=30_000)
    thumbnails = page.locator("#reference-gallery img")
    expect(thumbnails).to_have_count(3, timeout=30_000)
    expect(page.locator("#reference-gallery").get_by_text(re.compile(r"^user · \d{4}-\d\d-\d\d"))).to_have_count(3)
    page.locator("#reference-upload input[type=file]").set_input_files(str(demo_files.good))
    expect(page.locator("#reference-upload").get_by_text("bracket_good.png")).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Store them as reference normals of this class").click()
    expect(page.get_by_text("4 stored in all")).to_be_visible(timeout=60_000)
    expect(thumbnails).to_have_count(4, timeout=30_000)
    shots.take("knowledge", full_page=True)  # the panel is longer than the window
    thumbnails.first.click()
    expect(page.get_by_text("for good? Press Yes, remove")).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Yes, remove").click()
    expect(page.get_by_text("3 left")).to_be_visible(timeout=30_000)
    expect(thumbnails).to_have_count(3, timeout=30_000)
    page.get_by_role("tab", name="Inspect").click()
    expect(page.get_by_label("number input for Reference normals to use")).to_have_value("3")


def _reload_finds_and_continues_the_conversation(page) -> None:
    page.reload()
    expect(page.locator(".verdict-badge").last).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Why ANOMALOUS")).to_have_count(1)
    answer = _ask(page, "how sure are you?", re.compile(r"^Score \d\.\d\d"))  # the conversation goes on where it was
    assert "decision threshold" in answer.inner_text()


def _reopen_an_earlier_conversation_and_export_the_log(page, shots, demo_files, folder: Path) -> None:
    page.get_by_role("button", name="New conversation").click()
    expect(page.locator(".verdict-badge")).to_have_count(0, timeout=30_000)
    page.get_by_role("tab", name="History").click()
    row = page.locator("#conversation-list").get_by_role("gridcell", name=re.compile("add these three"))
    expect(row).to_be_visible(timeout=30_000)
    log = page.locator("#inspection-log")
    expect(log.get_by_role("gridcell", name="bracket_scratched.png")).to_be_visible()
    shots.take("history")
    with page.expect_download() as download:
        page.get_by_role("button", name="Export the log as CSV").click()
    exported = folder / "inspection-log.csv"
    download.value.save_as(exported)
    lines = list(csv.DictReader(exported.open(encoding="utf-8")))
    sha = hashlib.sha256(demo_files.defective.read_bytes()).hexdigest()
    assert [(x["file_name"], x["sha256"], x["verdict"], x["class_name"], x["backend"]) for x in lines] == [
        ("bracket_scratched.png", sha, "anomalous", "demo_bracket", "offline")]
    assert float(lines[0]["score"]) > 0.5 and lines[0]["user"] == "user" and lines[0]["time"]
    row.click()
    page.get_by_role("button", name="Open in the chat").click()
    expect(page.locator(".verdict-badge").last).to_be_visible(timeout=30_000)
    expect(page.get_by_text("Why ANOMALOUS")).to_have_count(1)


def test_the_whole_journey_in_the_browser(app_url, tmp_path):
    url, demo_files = app_url
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport=VIEWPORT, device_scale_factor=1, accept_downloads=True)
            page.route("**/*", _loopback_only)
            shots = Screenshots(page, tmp_path)
            page.goto(url)
            expect(page.get_by_text("Single-user mode")).to_be_visible(timeout=60_000)
            assert "Runs" not in page.locator("footer").inner_text()  # no run history with server paths
            _store_three_references_from_the_chat(page, shots, demo_files)
            _inspect_and_see_verdict_with_picture(page, shots, demo_files)
            _why_where_compare_with_crops(page, shots)
            _teach_a_rule(page)
            _manage_references_in_the_knowledge_panel(page, shots, demo_files)
            _reload_finds_and_continues_the_conversation(page)
            _reopen_an_earlier_conversation_and_export_the_log(page, shots, demo_files, tmp_path)
        finally:
            browser.close()
    assert sorted(p.name for p in tmp_path.glob("ui-*.png")) == SCREENSHOTS
