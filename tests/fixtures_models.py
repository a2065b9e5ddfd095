"""Fixtures for the model backends: fake OpenAI and Gemini servers on loopback, settings for them.

The fake keys are deliberately not shaped like real ones (no `sk-` + 24 word characters, no `AIza`).
"""

from __future__ import annotations

import io

import pytest
from PIL import Image

from assistant.backends.base import EncodedImage, Message, ModelRequest
from assistant.config import Settings, load_settings
from tests.helpers.fake_gemini import FakeGeminiServer
from tests.helpers.fake_openai import FakeOpenAIServer

FAKE_OPENAI_KEY = "sk-test.fake.openai-key"
FAKE_GEMINI_KEY = "gm-test.fake.gemini-key"

ZOOM_TOOL = {
    "name": "zoom",
    "description": "Zoom into a box of the query image.",
    "parameters": {
        "type": "object",
        "properties": {"box": {"type": "array", "items": {"type": "number"}}},
        "required": ["box"],
    },
}


def png_image(label: str, color=(200, 30, 30), size=(8, 6)) -> EncodedImage:
    """A tiny solid-colour PNG, encoded once, with its label."""
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return EncodedImage(buffer.getvalue(), label)


def ask(*parts, system: str = "You inspect parts.", **options) -> ModelRequest:
    """A request with a system message and one user message made of `parts` (text and images)."""
    user = list(parts) or ["Is anything wrong?"]
    return ModelRequest([Message("system", [system]), Message("user", user)], **options)


def model_settings(home, **overrides) -> Settings:
    """Settings for a backend test: a private home, no environment, short timeouts, 2 retries."""
    values = {"home": str(home), "request_timeout_s": 2.0, "max_retries": 2, **overrides}
    return load_settings(values, env={})


def openai_settings_for(server: FakeOpenAIServer, home, **overrides) -> Settings:
    """Settings whose OpenAI backend talks to `server` with the fake key."""
    return model_settings(home, **{"openai_base_url": server.url + "/v1", "openai_api_key": FAKE_OPENAI_KEY,
                                   **overrides})


def gemini_settings_for(server: FakeGeminiServer, home, **overrides) -> Settings:
    """Settings whose Gemini backend talks to `server` with the fake key."""
    return model_settings(home, **{"gemini_base_url": server.url, "gemini_api_key": FAKE_GEMINI_KEY, **overrides})


@pytest.fixture
def openai_server():
    """A fake Chat Completions server, started for one test."""
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def gemini_server():
    """A fake Gemini API server, started for one test."""
    with FakeGeminiServer() as server:
        yield server


@pytest.fixture
def fast_backoff(monkeypatch):
    """Backoff waits of about 10 ms so that retry tests stay fast."""
    from assistant.backends import retry

    monkeypatch.setattr(retry, "BACKOFF_BASE_S", 0.01)
    monkeypatch.setattr(retry, "BACKOFF_MAX_S", 0.05)
