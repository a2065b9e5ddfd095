"""Model backends; importing this package registers the built-in ones.

`auto` prefers the earlier of these when several are configured; each module registers its
backend with `@register_backend` (assistant/backends/registry.py). Adding a backend: a module here
and its name in BUILT_IN.
"""

import importlib

from assistant.backends.registry import BACKENDS, create_backend, register_backend

BUILT_IN = ("openai_backend", "gemini_backend", "offline")

for _module in BUILT_IN:
    importlib.import_module(f"assistant.backends.{_module}")

__all__ = ["BACKENDS", "BUILT_IN", "create_backend", "register_backend"]
