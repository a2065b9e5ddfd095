"""Chromium for the browser tests: where it is, the flags that keep it quiet and local, and a page whose
every request is recorded and, unless it goes to the app on loopback, refused."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-default-apps",
                  "--disable-extensions", "--metrics-recording-only", "--no-default-browser-check"]
LOCAL_SCHEMES = ("data", "blob", "about")


def launch(playwright):
    """Headless Chromium from the Debian package (playwright cannot download a browser here)."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)


def is_local(url: str) -> bool:
    """A request that stays on this machine: loopback, or data:/blob: URLs the page made itself."""
    parts = urlsplit(url)
    return parts.scheme in LOCAL_SCHEMES or parts.hostname in ("127.0.0.1", "localhost", "::1")


def guarded_page(browser, **options):
    """(page, outside): a new page whose requests to anything but loopback are refused and listed in `outside`."""
    page = browser.new_page(**options)
    outside: list[str] = []

    def route(request_route) -> None:
        if is_local(request_route.request.url):
            request_route.continue_()
        else:
            outside.append(request_route.request.url)
            request_route.abort()

    page.route("**/*", route)
    page.on("request", lambda request: None if is_local(request.url) else outside.append(request.url))
    return page, outside
