"""The chat app launched on loopback for gradio_client tests: sign-in on (erik is an expert, olga an
operator), offline backend, three reference normals of a "widget", and a fake OpenAI server at hand."""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.defects import add_defect, jitter, textured_part

PASSWORDS = {"erik": "erik-password", "olga": "olga-password"}


@dataclass
class RunningApp:
    url: str
    root: Path
    settings: object
    kb: object
    files: dict
    model_server: object
    downloads: Path | None = None  # where clients save files the app sends; None: they are not downloaded
    rule: object = None  # a rule an expert stored, for tests that try to change it

    def client(self, name: str = "erik"):
        from gradio_client import Client

        target = str(self.downloads) if self.downloads else False
        return Client(self.url, auth=(name, PASSWORDS[name]), verbose=False, download_files=target)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def widget_pictures(folder: Path) -> dict[str, Path]:
    """Three reference normals of a widget, one widget with a spot, and a corrupt PNG."""
    base = textured_part(seed=5)
    files = {f"ref{i}": folder / f"ref{i}.png" for i in range(3)} | {"bad": folder / "bad.png"}
    for i in range(3):
        jitter(base, seed=20 + i).save(files[f"ref{i}"])
    add_defect(jitter(base, seed=90), "spot", seed=2, scale=1.5)[0].save(files["bad"])
    files["corrupt"] = folder / "corrupt.png"
    files["corrupt"].write_bytes(b"\x89PNG\r\n\x1a\n this is not really a picture")
    return files


def _users_file(root: Path) -> Path:
    from assistant.app.access import hash_password

    users = root / "users.toml"
    users.write_text("".join(f'[users.{n}]\nrole = "{"expert" if n == "erik" else "operator"}"\n'
                             f'password = "{hash_password(p)}"\n' for n, p in PASSWORDS.items()))
    return users


@contextlib.contextmanager
def launched_app(root: Path, *, downloads: bool = False, **settings_values):
    """The app served on loopback until the block ends; settings_values override the settings."""
    import ui
    from assistant.commands.common import open_kb
    from assistant.config import load_settings
    from tests.helpers.fake_openai import FakeOpenAIServer

    patch = pytest.MonkeyPatch()
    patch.setenv("GRADIO_TEMP_DIR", str(root / "gradio"))
    patch.setenv("ANOMALY_CHAT_HOME", str(root / "home"))
    settings = load_settings({"home": str(root / "home"), "backend": "offline", "users_file": str(_users_file(root)),
                              **settings_values}, env={})
    files = widget_pictures(root)
    kb = open_kb(settings)
    for i in range(3):
        kb.add_reference("widget", files[f"ref{i}"], author="tester")
    demo = ui.build_app(settings)
    _, url, _ = ui.launch(demo, settings, "127.0.0.1", free_port(), prevent_thread_lock=True, quiet=True)
    server = FakeOpenAIServer().start()
    folder = root / "downloads" if downloads else None
    if folder:
        folder.mkdir()
    try:
        yield RunningApp(url, root, settings, kb, files, server, folder)
        server.assert_well_formed()
    finally:
        server.stop()
        demo.close()
        patch.undo()
