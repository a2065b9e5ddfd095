"""Settings in one place: explicit argument > config file > environment > default.

The config file is TOML (`ANOMALY_CHAT_CONFIG`, else `<home>/config.toml`); unknown keys are
rejected so that a typo does not silently fall back to a default. Keys are held as `Secret`, which is
not a string and shows itself as *** however it is formatted; `reveal()` is its one way out. The
backends' own settings (their keys and base URLs, with their environment variables) are declared by
each backend (assistant/backends/registry.py) and read here like every other setting:
`settings.openai_api_key`.
"""

from __future__ import annotations

import hmac
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from platformdirs import user_data_dir

from assistant.prompts import DEFAULT_STRATEGY
from tools.errors import InputError

ENV_VARS = {
    "home": "ANOMALY_CHAT_HOME",
    "chroma_url": "ANOMALY_CHAT_CHROMA_URL",
    "backend": "ANOMALY_CHAT_BACKEND",
    "model": "ANOMALY_CHAT_MODEL",
    "embedding_model_path": "ANOMALY_CHAT_EMBEDDING_MODEL",
    "users_file": "ANOMALY_CHAT_USERS",
}


class Secret:
    """An API key that is not a string: it shows itself as *** (str, repr, f-strings, %-formatting, so logs
    too), refuses to be joined to text, JSON-encoded, encoded or pickled, and `reveal()` is its one way
    out, called only where the key really goes (the SDK client of its configured endpoint)."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        object.__setattr__(self, "_value", value.reveal() if isinstance(value, Secret) else str(value))

    def reveal(self) -> str:
        """The key itself: only for the client that sends it to its configured endpoint."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return "***"

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __add__(self, other):
        raise TypeError("a Secret cannot be joined to text; call reveal() where the key is really sent")

    __radd__ = __add__

    def __setattr__(self, name, value):
        raise AttributeError("a Secret cannot be changed")

    def __copy__(self) -> Secret:
        return self  # immutable: copies of settings share it

    def __deepcopy__(self, memo) -> Secret:
        return self

    def __reduce__(self):
        raise TypeError("a Secret cannot be pickled")


@dataclass(frozen=True)
class Settings:
    home: Path = field(default_factory=lambda: Path(user_data_dir("anomaly-chat", appauthor=False)))
    chroma_url: str | None = None
    backend: str = "auto"  # auto: the first backend whose key or base URL is set, else offline
    model: str | None = None
    embedding_model_path: str | None = None
    strategy: str = DEFAULT_STRATEGY
    references: int = 1
    image_long_side: int = 768
    max_upload_mb: int = 512
    max_image_pixels: int = 64_000_000
    request_timeout_s: float = 60.0
    max_retries: int = 3
    agent_max_steps: int = 6
    users_file: str | None = None
    provider: dict = field(default_factory=dict, repr=False, hash=False)  # the backends' settings, by name

    def __getattr__(self, name: str):
        if name in _provider_settings():  # e.g. settings.openai_api_key; None when not set
            return self.__dict__.get("provider", {}).get(name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def with_provider(self, **values) -> Settings:
        """A copy with some of the backends' settings replaced (e.g. a base URL given on the command line)."""
        return replace(self, provider={**self.provider, **{k: _coerce(k, v) for k, v in values.items()}})

    @property
    def kb_dir(self) -> Path:
        return self.home / "knowledge"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def uploads_dir(self) -> Path:
        return self.home / "uploads"

    def resolved_backend(self) -> str:
        """The backend to use: 'auto' picks a configured provider, else the offline one."""
        from assistant.backends.registry import resolve

        return resolve(self)


_FIELDS = {f.name: f for f in fields(Settings) if f.name != "provider"}


def _provider_settings() -> dict:
    from assistant.backends.registry import provider_settings

    return provider_settings()


def _coerce(name: str, value):
    if value is None:
        return None
    provider = _provider_settings().get(name)
    if provider is not None:
        return (value if isinstance(value, Secret) else Secret(str(value))) if provider.secret else str(value)
    kind = _FIELDS[name].type
    if name == "home":
        return Path(os.path.expanduser(str(value)))
    if kind in ("int", int):
        return int(value)
    if kind in ("float", float):
        return float(value)
    return str(value)


def _from_env(env) -> dict:
    found = {name: env[var] for name, var in ENV_VARS.items() if env.get(var)}
    for name, setting in _provider_settings().items():
        value = next((env[var] for var in setting.env if env.get(var)), None)
        if value:
            found[name] = value
    return found


def _allowed() -> set[str]:
    return set(_FIELDS) | set(_provider_settings())


def _from_file(path: Path) -> dict:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"config file {path} cannot be read ({exc}); fix or remove it") from None
    unknown = sorted(set(data) - _allowed())
    if unknown:
        raise InputError(f"config file {path} has unknown keys {unknown}; allowed: {sorted(_allowed())}")
    return data


def load_settings(overrides: dict | None = None, env=None) -> Settings:
    """Settings from explicit overrides, then the config file, then the environment."""
    env = os.environ if env is None else env
    explicit = {k: v for k, v in (overrides or {}).items() if v is not None}
    config_arg = explicit.pop("config", None)
    unknown = sorted(set(explicit) - _allowed())
    if unknown:
        raise InputError(f"unknown settings {unknown}")
    layered = _from_env(env)
    home = explicit.get("home") or layered.get("home")
    base = Settings() if home is None else Settings(home=Path(os.path.expanduser(str(home))))
    config_path = config_arg or env.get("ANOMALY_CHAT_CONFIG")
    config_path = Path(config_path) if config_path else base.home / "config.toml"
    if config_path.is_file():
        layered.update(_from_file(config_path))
    layered.update(explicit)
    try:
        values = {k: _coerce(k, v) for k, v in layered.items()}
        provider = {k: values.pop(k) for k in list(values) if k not in _FIELDS}
        return replace(base, provider=provider, **values)
    except (TypeError, ValueError) as exc:
        raise InputError(f"bad setting: {exc}") from None
