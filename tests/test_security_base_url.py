"""The base URL chosen in the app's Settings tab, driven through the launched app with gradio_client.

Both network backends are configured with a canary key and a configured endpoint (a local server of
their protocol); a second local server of each protocol stands for an address typed into the Settings
tab at run time. The servers record every request's credential header: the run-time one must only
ever get the placeholder, the configured one the key. The field itself takes only http(s) URLs
without credentials, query or fragment, never a link-local or cloud-metadata address; a refusal is
one short escaped line, and every change is logged with its author.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import pytest

from assistant.app.chat_view import as_read
from assistant.backends.network import PLACEHOLDER_KEY
from assistant.backends.urls import check_base_url
from tests.helpers.app import launched_app
from tests.helpers.fake_gemini import FakeGeminiServer
from tests.helpers.fake_openai import FakeOpenAIServer
from tests.helpers.hostile import CANARY
from tests.test_security_ui import ask
from tools.errors import ConfigError

pytestmark = pytest.mark.slow
GEMINI_CANARY = "gm-test.canary.KEY456"
LIVE_LINK = re.compile(r"(?<!\\)\]\(|https?://")  # Markdown that would still make a link or fetch an image


@dataclass
class Provider:
    name: str
    key: str
    header: str
    configured: object  # the local server the settings configure
    run_time: object  # the local server typed into the Settings tab
    suffix: str  # what follows the server's address in its base URL

    def url(self, server) -> str:
        return server.url + self.suffix

    def keys_sent(self, server) -> set[str]:
        """Which of (the key, the placeholder, something else) each request to the server carried."""
        return {"key" if r.credential_is(self.header, self.key) else
                "placeholder" if r.credential_is(self.header, PLACEHOLDER_KEY) else "other" for r in server.requests}


@pytest.fixture(scope="module")
def providers():
    servers = [FakeOpenAIServer().start() for _ in range(2)] + [FakeGeminiServer().start() for _ in range(2)]
    yield {"openai": Provider("openai", CANARY, "authorization", servers[0], servers[1], "/v1"),
           "gemini": Provider("gemini", GEMINI_CANARY, "x-goog-api-key", servers[2], servers[3], "")}
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def app(tmp_path_factory, providers):
    openai, gemini = providers["openai"], providers["gemini"]
    with launched_app(tmp_path_factory.mktemp("base_url_app"), max_retries=0,
                      openai_api_key=openai.key, openai_base_url=openai.url(openai.configured),
                      gemini_api_key=gemini.key, gemini_base_url=gemini.url(gemini.configured)) as running:
        yield running


def _switch(client, name: str, base_url: str) -> str:
    return client.predict(name, "", base_url, api_name="/use_backend")


@pytest.mark.parametrize("name", ["openai", "gemini"])
def test_a_base_url_set_in_the_settings_tab_gets_the_placeholder_never_the_key(app, providers, name):
    provider, expert = providers[name], app.client("erik")
    assert _switch(expert, name, provider.url(provider.run_time)).startswith(f"Using backend **{name}**")
    verdict = ask(expert, "is anything wrong?", [app.files["bad"]])[-1]["text"]
    assert "NORMAL" in verdict  # the run-time server answered the analysis
    assert provider.run_time.requests and provider.keys_sent(provider.run_time) == {"placeholder"}


@pytest.mark.parametrize("field", ["empty", "the configured URL"])
@pytest.mark.parametrize("name", ["openai", "gemini"])
def test_the_configured_endpoint_gets_the_key(app, providers, name, field):
    provider, expert = providers[name], app.client("erik")
    before = len(provider.configured.requests)
    typed = "" if field == "empty" else provider.url(provider.configured) + "/"
    assert _switch(expert, name, typed).startswith(f"Using backend **{name}**")
    assert "NORMAL" in ask(expert, "is anything wrong?", [app.files["bad"]])[-1]["text"]
    assert len(provider.configured.requests) > before and provider.keys_sent(provider.configured) == {"key"}


REFUSED = {
    "ftp scheme": "ftp://127.0.0.1/v1",
    "file scheme": "file:///etc/passwd",
    "javascript": "javascript:alert(1)",
    "no host": "http:///v1",
    "credentials": "http://admin:hunter2@127.0.0.1:9/v1",
    "user name": "http://admin@127.0.0.1:9/v1",
    "fragment": "http://127.0.0.1:9/v1#top",
    "query": "http://127.0.0.1:9/v1?key=abc",
    "metadata address": "http://169.254.169.254/latest/meta-data",
    "metadata in decimal": "http://2852039166/latest",
    "metadata in hex": "http://0xa9.0xfe.0xa9.0xfe/",
    "metadata as mapped IPv6": "http://[::ffff:169.254.169.254]/",
    "IPv6 link-local": "http://[fe80::1]:8000/v1",
    "metadata name": "http://metadata.google.internal/computeMetadata/v1",
    "unspecified address": "http://0.0.0.0:11434/v1",
    "markup in it": 'http://127.0.0.1:9/<img src=x onerror="alert(1)">',
    "bad port": "http://127.0.0.1:99999/v1",
    "too long": "http://127.0.0.1:9/" + "a" * 3000,
}


@pytest.mark.parametrize("url", list(REFUSED.values()), ids=list(REFUSED))
def test_the_base_url_field_refuses_what_is_not_a_model_server_address(app, url):
    expert = app.client("erik")
    status = _switch(expert, "openai", url)
    assert status.startswith("⚠️ ") and "\n" not in status and len(as_read(status)) <= 305
    assert "<img" not in status and "hunter2" not in status and "a" * 300 not in status
    answer = ask(expert, "is anything wrong?", [app.files["bad"]])[-1]["text"]
    assert "offline/experts" in answer  # the conversation kept its backend


ACCEPTED = ["http://127.0.0.1:11434/v1", "http://localhost:8000/v1", "http://192.168.1.20:8000/v1",
            "http://10.0.0.7/v1", "https://api.openai.com/v1", "http://[::1]:8000/v1", "https://llm.lan.example/v1/"]
# What the names resolve to here (no DNS in tests): a public address, a LAN address, a metadata address.
NAMES = {"api.openai.com": "162.159.140.245", "llm.lan.example": "192.168.1.30", "innocent.example": "169.254.169.254"}


@pytest.fixture
def dns(monkeypatch):
    """The resolver answers NAMES; addresses and localhost resolve as usual."""
    import socket

    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        if host in NAMES:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (NAMES[host], 0))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)


@pytest.mark.parametrize("url", ACCEPTED)
def test_loopback_lan_and_public_servers_are_accepted(url, dns):
    assert check_base_url(url) == url.rstrip("/")


def test_a_name_that_resolves_to_a_metadata_address_is_refused(dns):
    with pytest.raises(ConfigError, match="link-local or cloud-metadata"):
        check_base_url("http://innocent.example/v1")


def test_a_name_that_does_not_resolve_is_refused_in_one_line():
    with pytest.raises(ConfigError, match="cannot be resolved"):
        check_base_url("http://no-such-host.invalid/v1")


def test_an_operator_is_refused_and_the_refusal_is_logged(app, caplog):
    caplog.set_level(logging.INFO, logger="assistant.app.conversation")
    status = _switch(app.client("olga"), "openai", "http://127.0.0.1:9/v1")
    assert status.startswith("⚠️ only experts may change the backend")
    assert any("olga" in r.getMessage() and "refused" in r.getMessage() for r in caplog.records)


def test_a_backend_change_is_logged_with_its_author_and_without_secrets(app, providers, caplog):
    caplog.set_level(logging.DEBUG)
    provider = providers["openai"]
    _switch(app.client("erik"), "openai", provider.url(provider.run_time))
    _switch(app.client("erik"), "openai", "http://admin:hunter2@127.0.0.1:9/v1?key=abc")
    lines = [r.getMessage() for r in caplog.records if r.name == "assistant.app.conversation"]
    assert any("erik" in line and provider.url(provider.run_time) in line for line in lines)
    assert any("erik" in line and "refused" in line for line in lines)
    assert not [line for line in lines if "hunter2" in line or "key=abc" in line or CANARY in line]


def test_a_run_time_server_cannot_put_markup_or_pages_of_text_into_the_chat(app, providers):
    provider, expert = providers["openai"], app.client("erik")
    body = "<html><script>alert(1)</script>![x](http://evil.test/?d=1)\n" + "internal page line\n" * 500
    provider.run_time.enqueue_error(400, body)
    _switch(expert, "openai", provider.url(provider.run_time))
    shown = ask(expert, "is anything wrong?", [app.files["bad"]])[-1]["text"]
    assert shown.startswith("⚠️ the model backend failed") and "\n" not in shown and len(as_read(shown)) <= 305
    assert "<script" not in shown and not LIVE_LINK.search(shown)
