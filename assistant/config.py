"""Settings in one place: explicit argument > config file > environment > default.

The config file is TOML (`ANOMALY_CHAT_CONFIG`, else `<home>/config.toml`); unknown keys are
rejected so that a typo does not silently fall back to a default. Keys are held as `Secret`, whose
repr never shows the value.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from platformdirs import user_data_dir

from tools.errors import InputError

ENV_VARS = {
    "home": "ANOMALY_CHAT_HOME",
    "chroma_url": "ANOMALY_CHAT_CHROMA_URL",
    "backend": "ANOMALY_CHAT_BACKEND",
    "model": "ANOMALY_CHAT_MODEL",
    "embedding_model_path": "ANOMALY_CHAT_EMBEDDING_MODEL",
    "users_file": "ANOMALY_CHAT_USERS",
}
KEY_ENV_VARS = {
    "openai_api_key": ("OPENAI_API_KEY",),
    "openai_base_url": ("OPENAI_BASE_URL",),
    "gemini_api_key": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
}


class Secret(str):
    """A string that hides itself in str/repr/format (so in logs, f-strings and %-formatting too)."""

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return "***"

    def reveal(self) -> str:
        return str.__str__(self)


@dataclass(frozen=True)
class Settings:
    home: Path = field(default_factory=lambda: Path(user_data_dir("anomaly-chat", appauthor=False)))
    chroma_url: str | None = None
    backend: str = "auto"  # auto: openai/gemini when a key or base URL is set, else offline
    model: str | None = None
    openai_api_key: Secret | None = field(default=None, repr=False)
    openai_base_url: str | None = None
    gemini_api_key: Secret | None = field(default=None, repr=False)
    gemini_base_url: str | None = None
    embedding_model_path: str | None = None
    strategy: str = "rules+reference+expert"
    references: int = 1
    image_long_side: int = 768
    max_upload_mb: int = 512
    max_image_pixels: int = 64_000_000
    request_timeout_s: float = 60.0
    max_retries: int = 3
    agent_max_steps: int = 6
    users_file: str | None = None

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
        if self.backend != "auto":
            return self.backend
        if self.openai_api_key or self.openai_base_url:
            return "openai"
        if self.gemini_api_key:
            return "gemini"
        return "offline"


_FIELDS = {f.name: f for f in fields(Settings)}


def _coerce(name: str, value):
    if value is None:
        return None
    kind = _FIELDS[name].type
    if name.endswith("_api_key"):
        return value if isinstance(value, Secret) else Secret(str(value))
    if name == "home":
        return Path(os.path.expanduser(str(value)))
    if kind in ("int", int):
        return int(value)
    if kind in ("float", float):
        return float(value)
    return str(value)


def _from_env(env) -> dict:
    found = {name: env[var] for name, var in ENV_VARS.items() if env.get(var)}
    for name, names in KEY_ENV_VARS.items():
        for var in names:
            if env.get(var):
                found[name] = env[var]
                break
    return found


def _from_file(path: Path) -> dict:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"config file {path} cannot be read ({exc}); fix or remove it") from None
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise InputError(f"config file {path} has unknown keys {unknown}; allowed: {sorted(_FIELDS)}")
    return data


def load_settings(overrides: dict | None = None, env=None) -> Settings:
    """Settings from explicit overrides, then the config file, then the environment."""
    env = os.environ if env is None else env
    explicit = {k: v for k, v in (overrides or {}).items() if v is not None}
    config_arg = explicit.pop("config", None)
    unknown = sorted(set(explicit) - set(_FIELDS))
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
        return replace(base, **{k: _coerce(k, v) for k, v in layered.items()})
    except (TypeError, ValueError) as exc:
        raise InputError(f"bad setting: {exc}") from None
