"""Model backends; importing this package registers the built-in ones."""

import importlib

from assistant.backends.base import BACKENDS, Backend, create_backend, register_backend

for _module in ("offline", "openai_backend", "gemini_backend"):
    try:
        importlib.import_module(f"assistant.backends.{_module}")
    except ModuleNotFoundError as exc:  # a backend not built yet
        if exc.name != f"assistant.backends.{_module}":
            raise

__all__ = ["BACKENDS", "Backend", "create_backend", "register_backend"]
