"""What every model backend implements: the provider-neutral request and reply, and the Backend class.

A backend is one small class: what it is (name, default model, its key and base-URL settings,
whether it costs money, its prices) and what it can do (capability flags) as class attributes, and
one method, `complete`, that sends a `ModelRequest` and returns a `ModelReply`. It registers with
`@register_backend` (assistant/backends/registry.py), so adding one is adding a module, not a branch.
Backends that call a provider over the network share assistant/backends/network.py.
"""

from __future__ import annotations

import base64
import hashlib
import io
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

Role = Literal["system", "user", "assistant", "tool"]


class EncodedImage:
    """An image for the model, PNG-encoded once and reused in every turn that sends it.

    `from_pil` defers the resizing and encoding to the first read of `data`: a backend that reads
    pictures does so when it sends the request, and one that does not (the offline backend reads
    the structured turn) never pays for them (about a third of an offline turn's CPU time).
    """

    __slots__ = ("_data", "_picture", "label", "mime")

    def __init__(self, data: bytes | None, label: str, mime: str = "image/png", *, picture=None):
        if data is None and picture is None:
            raise ValueError("an EncodedImage needs its bytes or the picture to encode")
        self._data, self._picture, self.label, self.mime = data, picture, label, mime

    @classmethod
    def from_pil(cls, image, label: str, long_side: int | None = None) -> EncodedImage:
        """The picture, encoded (at most long_side pixels on its longer side) when first read."""
        return cls(None, label, picture=(image, long_side))

    @property
    def data(self) -> bytes:
        """The PNG bytes (encoded now if this is the first read; the same bytes on every read)."""
        picture = self._picture
        if self._data is None and picture is not None:  # two threads may both encode: the same bytes
            self._data = _png(*picture)
            self._picture = None  # only after _data is set: a reader that finds no picture finds the bytes
        return self._data

    @property
    def encoded(self) -> bool:
        """Whether the PNG bytes have been made yet."""
        return self._data is not None

    @property
    def b64(self) -> str:
        return base64.b64encode(self.data).decode("ascii")

    @property
    def data_url(self) -> str:
        return f"data:{self.mime};base64,{self.b64}"

    @property
    def caption(self) -> str:
        """The text part sent just before the image so the model can refer to it by label."""
        return f"[image: {self.label}]"

    @property
    def sha(self) -> str:
        return hashlib.sha256(self.data).hexdigest()[:12]

    def __eq__(self, other) -> bool:  # equal when they send the same thing (as the frozen dataclass it was)
        if not isinstance(other, EncodedImage):
            return NotImplemented
        return (self.label, self.mime, self.data) == (other.label, other.mime, other.data)

    def __hash__(self) -> int:
        return hash((self.label, self.mime, self.data))

    def __repr__(self) -> str:
        return f"EncodedImage(label={self.label!r}, mime={self.mime!r})"


def _png(image, long_side: int | None) -> bytes:
    from tools.render.imageops import fit_long_side

    if long_side:
        image = fit_long_side(image, long_side)
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG", compress_level=1)  # fast: ~3x quicker, ~30 % larger
    return buffer.getvalue()


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: dict


@dataclass
class Message:
    """One chat message; `parts` keeps text and images in the order the model should see them."""

    role: Role
    parts: list[str | EncodedImage] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None
    tool_name: str | None = None

    @property
    def text(self) -> str:
        return "\n".join(p for p in self.parts if isinstance(p, str))

    @property
    def images(self) -> list[EncodedImage]:
        return [p for p in self.parts if isinstance(p, EncodedImage)]


@dataclass
class ModelRequest:
    messages: list[Message]
    tools: list[dict] = field(default_factory=list)  # [{"name", "description", "parameters"}]
    json_schema: dict | None = None  # ask for a structured reply when set
    want_logprobs: bool = False
    temperature: float = 0.0
    max_tokens: int = 4096  # room for reasoning models, whose thinking counts against the limit
    context: Any = None  # the structured turn (evidence, rules); used by the offline backend only


@dataclass
class TokenLogprob:
    token: str
    logprob: float
    top: dict[str, float] = field(default_factory=dict)


@dataclass
class ModelReply:
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    logprobs: list[TokenLogprob] | None = None
    finish_reason: str = "stop"
    model: str = ""
    usage: dict = field(default_factory=dict)  # input_tokens, output_tokens
    refused: bool = False


TextSink = Callable[[str], None]


def tool_result_text(message: Message) -> str:
    """A tool result's text, noting any images (tool results carry text only; images follow)."""
    text = message.text or "(no output)"
    if message.images:
        text += f"\n({len(message.images)} image(s) from this tool follow in the next message.)"
    return text


def tool_images_intro(message: Message) -> str:
    """The text that introduces a tool's images in the user message after the tool results."""
    return f"Images returned by the tool {message.tool_name or 'call'}:"


@dataclass(frozen=True)
class ProviderSetting:
    """A setting a backend brings with it (its API key, its base URL), and where it is read from."""

    name: str  # the Settings attribute and config-file key, e.g. "openai_api_key"
    env: tuple[str, ...] = ()  # environment variables, the first one set wins
    secret: bool = False  # held as config.Secret: never shown, logged or exported


class Backend:
    """Base class: declare what the backend is and can do, implement `complete`."""

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""  # the provider's name in messages, e.g. "OpenAI" (default: the name)
    default_model: ClassVar[str] = ""
    models: ClassVar[tuple[str, ...]] = ()  # well-known models, offered in the app
    prices: ClassVar[dict[str, tuple[float, float]]] = {}  # model -> USD per 1M input, output tokens (list prices)
    costs_money: ClassVar[bool] = False
    key_setting: ClassVar[ProviderSetting | None] = None  # where its API key comes from, if it needs one
    url_setting: ClassVar[ProviderSetting | None] = None  # where its base URL comes from, if it has one
    supports_images: ClassVar[bool] = True
    supports_tools: ClassVar[bool] = True
    supports_schema: ClassVar[bool] = True
    supports_streaming: ClassVar[bool] = False
    needs_network: ClassVar[bool] = True

    def __init__(self, settings, *, model: str | None = None, base_url: str | None = None):
        self.settings = settings
        self.model = model or settings.model or self.default_model
        self.base_url = base_url

    @classmethod
    def provider_settings(cls) -> tuple[ProviderSetting, ...]:
        """The settings this backend brings (key, base URL)."""
        return tuple(s for s in (cls.key_setting, cls.url_setting) if s is not None)

    @classmethod
    def is_configured(cls, settings) -> bool:
        """Whether the settings let it run: its key is set (a backend without a key always runs)."""
        return cls.key_setting is None or bool(getattr(settings, cls.key_setting.name, None))

    def complete(self, request: ModelRequest, on_text: TextSink | None = None) -> ModelReply:
        raise NotImplementedError


class EncodedImages:
    """Prompt images encoded once per conversation, keyed by what they show; the oldest go first.

    A follow-up turn sends the same pictures again: their PNG encoding is reused, not redone.
    """

    def __init__(self, long_side: int, limit: int = 64):
        self.long_side, self.limit = long_side, limit
        self._encoded: OrderedDict[tuple, EncodedImage] = OrderedDict()

    def get(self, key, image, label: str) -> EncodedImage:
        """The image encoded under this label, from the cache when the same key was encoded before."""
        cached = self._encoded.get((key, label))
        if cached is None:
            cached = self._encoded[(key, label)] = EncodedImage.from_pil(image, label, self.long_side)
            while len(self._encoded) > self.limit:
                self._encoded.popitem(last=False)
        return cached
