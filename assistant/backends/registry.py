"""The backends by name: the one list the CLI, the configuration, the app and the cost table read.

A backend registers its class with `@register_backend`; the built-in ones are imported by
assistant/backends/__init__.py. Backend modules import their provider's SDK only when a backend is
built, so reading the registry is cheap (the CLI's --help and the app's settings use it).
`create_backend` builds one; callers build it once per choice and pass it on.
"""

from __future__ import annotations

from dataclasses import replace

from assistant.backends.base import Backend, ProviderSetting
from assistant.backends.urls import check_base_url
from tools.errors import ConfigError

BACKENDS: dict[str, type[Backend]] = {}  # in registration order: `auto` prefers the earlier ones
AUTO = "auto"


def register_backend(cls: type[Backend]) -> type[Backend]:
    """Make a Backend class available by its name (a class decorator)."""
    BACKENDS[cls.name] = cls
    return cls


def _registered() -> dict[str, type[Backend]]:
    import assistant.backends  # noqa: F401 - importing the package registers the built-in backends

    return BACKENDS


def backend_names() -> list[str]:
    """Every registered backend's name, in registration order."""
    return list(_registered())


def backend_class(name: str) -> type[Backend]:
    """The registered class of a backend; ConfigError naming the choices for an unknown one."""
    cls = _registered().get(name)
    if cls is None:
        raise ConfigError(f"unknown backend {name!r}; choose one of: {', '.join([AUTO, *sorted(BACKENDS)])}")
    return cls


def provider_settings() -> dict[str, ProviderSetting]:
    """The settings the backends bring (keys, base URLs), by name."""
    return {s.name: s for cls in _registered().values() for s in cls.provider_settings()}


def resolve(settings) -> str:
    """The backend `settings.backend` names; `auto` picks the first configured network backend, else a local one."""
    if settings.backend != AUTO:
        return settings.backend
    classes = list(_registered().values())
    remote = [c for c in classes if c.needs_network and c.is_configured(settings)]
    local = [c for c in classes if not c.needs_network]
    return (remote or local)[0].name


def with_base_url(settings, base_url: str | None):
    """Settings whose chosen backend is configured for `base_url` (the CLI's --base-url).

    With `auto`, the first backend that a base URL alone makes usable takes it (an OpenAI-compatible server).
    """
    if not base_url:
        return settings
    names = backend_names() if settings.backend == AUTO else [settings.backend]
    for name in names:
        cls = backend_class(name)
        if cls.url_setting is None:
            continue
        candidate = settings.with_provider(**{cls.url_setting.name: base_url})
        if settings.backend != AUTO or cls.is_configured(candidate):
            return candidate
    return settings


def configured_base_url(settings) -> str | None:
    """The base URL configured for the backend the settings choose, if it has one (for the app's settings)."""
    cls = _registered().get(resolve(settings))
    return getattr(settings, cls.url_setting.name, None) if cls is not None and cls.url_setting else None


def create_backend(settings, name: str | None = None, *, model: str | None = None,
                   base_url: str | None = None) -> Backend:
    """Build the backend `name` (default: the one the settings choose; `auto` resolved).

    A `base_url` given here is chosen at run time (e.g. in the app): it must pass `urls.check_base_url`
    (ConfigError otherwise), and the backend's key does not go there.
    """
    chosen = replace(settings, backend=name) if name else settings
    cls = backend_class(resolve(chosen))
    return cls(chosen, model=model, base_url=check_base_url(base_url) if base_url else None)


def costs_money(name: str) -> bool:
    """Whether a backend's use is charged (unknown names count as charged)."""
    cls = _registered().get(name)
    return cls is None or cls.costs_money


def price_table() -> dict[str, tuple[float, float]]:
    """Every backend's list prices, model -> (input, output) USD per 1M tokens."""
    return {model: price for cls in _registered().values() for model, price in cls.prices.items()}


def keys_status(settings) -> dict[str, bool]:
    """Which backends have their key set (never the keys themselves), for backends that need one."""
    return {cls.name: bool(getattr(settings, cls.key_setting.name, None))
            for cls in _registered().values() if cls.key_setting}
