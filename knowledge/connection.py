"""One Chroma connection per knowledge base directory per process, kept in step with other processes.

Embedded Chroma keeps each collection's vector index in the memory of every process that opened
it and writes it back to disk now and then; it does not notice writes made by another process.
Left alone, a process then fails filtered queries ("Error finding id") and can even write an old
index back over a newer one. So, for an embedded store:

- every write happens under the store's file lock, and first changes a generation token on disk;
- before every operation a process compares the token with the one it last saw, and if another
  process has written since, it reloads Chroma (under the lock, so never in the middle of a write).

A Chroma server needs none of this: the server is the only process touching its files. When it
does not answer, every operation fails with one ConfigError line; its HTTP client reconnects by
itself, so once the server is back (same path and port) the next operation works again.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from pathlib import Path

import chromadb.errors
import httpx
from filelock import FileLock

from knowledge.chroma import connect, open_collections
from knowledge.reindex import reembed_if_model_changed
from tools.errors import ConfigError

LOCK_FILE = ".write.lock"
GENERATION_FILE = "chroma.generation"
LOCK_TIMEOUT_S = 600
_MUTATIONS = {"add", "upsert", "update", "delete"}
_shared: dict[tuple, Connection] = {}
_shared_lock = threading.Lock()


def acquire(path: Path, chroma_url: str | None, text_embedding) -> Connection:
    """The process's connection for this store (opened on first use)."""
    key = (str(path.resolve()), chroma_url, text_embedding.model_path)
    with _shared_lock:
        connection = _shared.get(key)
        if connection is None:
            connection = _shared[key] = Connection(path, chroma_url, text_embedding)
        connection.users += 1
        return connection


class Connection:
    """Client, collections and locks of one store; shared by every KnowledgeBase on it in this process."""

    def __init__(self, path: Path, chroma_url: str | None, text_embedding):
        self.path, self.chroma_url, self.text_embedding = path, chroma_url, text_embedding
        # Between processes. A short poll: a waiting writer must get its turn while the writer
        # that just let go is still preparing its next change, or it can starve.
        self.lock = FileLock(str(path / LOCK_FILE), timeout=LOCK_TIMEOUT_S, poll_interval=0.005)
        self.thread_lock = threading.RLock()  # between threads: no reload under a running query
        self.users = 0
        self.reloads = 0  # how often another process's writes made this one reload (for diagnostics)
        self.client = self.collections = self._seen = None
        self._changed_in_this_write = False
        with self.lock:
            self._connect()

    @property
    def embedded(self) -> bool:
        return self.chroma_url is None

    def _connect(self) -> None:
        self.client = connect(self.path, self.chroma_url)
        opened = open_collections(self.client, self.text_embedding)
        current = reembed_if_model_changed(self.client, opened, self.text_embedding)
        self.collections = _Tracked(current, self._before_change)
        self._seen = self._generation()
        if current is not opened and self.embedded:
            self._bump()  # the rules collection was rebuilt: other processes must reopen it

    def _generation(self) -> str | None:
        try:
            return (self.path / GENERATION_FILE).read_text()
        except FileNotFoundError:
            return None

    def _reload_if_stale(self) -> None:
        if self.embedded and self._generation() != self._seen:
            with self.lock:
                self.client.close()  # the last client of a path stops its Chroma system: the next one reloads
                self._connect()
                self.reloads += 1

    def _before_change(self) -> None:
        """Called before every change to a collection: tell other processes their view is out of date."""
        if self.embedded and not self._changed_in_this_write:
            self._bump()
            self._changed_in_this_write = True

    def _bump(self) -> None:
        token = secrets.token_hex(8)
        tmp = self.path / f"{GENERATION_FILE}.{os.getpid()}"
        tmp.write_text(token)
        os.replace(tmp, self.path / GENERATION_FILE)  # atomic: readers see the old or the new token
        self._seen = token

    def version(self):
        """Changes whenever this process writes or reloads (embedded stores; None on a server)."""
        return self._seen

    def embed_ahead(self, texts: list[str]) -> None:
        """Embed texts before taking the lock (the vectors are cached), so the lock is held briefly."""
        if texts:  # Chroma's embedding function refuses an empty batch
            self.text_embedding(texts)

    @contextlib.contextmanager
    def writing(self):
        """Exclusive access for a change, with an up-to-date view of the store."""
        with self.thread_lock, self.lock, self._server_reachable():
            self._reload_if_stale()
            self._changed_in_this_write = False
            yield

    def read(self, operation):
        """Run a read with an up-to-date view; retried once if another process wrote meanwhile."""
        with self.thread_lock, self._server_reachable():
            self._reload_if_stale()
            try:
                return operation()
            except chromadb.errors.InternalError:
                if not self.embedded:
                    raise
                self._seen = None  # a write landed between the check and the read: reload and retry
                self._reload_if_stale()
                return operation()

    @contextlib.contextmanager
    def _server_reachable(self):
        """A Chroma server that cannot be reached is one clear line (the next call simply tries again)."""
        try:
            yield
        except (httpx.TransportError, ConnectionError) as exc:
            if self.embedded:
                raise
            raise ConfigError(f"the Chroma server at {self.chroma_url} does not answer ({exc or type(exc).__name__}); "
                              "start it again (`chroma run --path DIR --port N`) and retry") from None

    def release(self) -> None:
        """One KnowledgeBase less; the last one closes the client."""
        with _shared_lock:
            self.users -= 1
            if self.users > 0:
                return
            for key, connection in list(_shared.items()):
                if connection is self:
                    del _shared[key]
        self.client.close()


class _Tracked:
    """The collections, each wrapped so that a change first marks the store as changed."""

    def __init__(self, raw, before_change):
        self.rules = _TrackedCollection(raw.rules, before_change)
        self.references = _TrackedCollection(raw.references, before_change)
        self.meta = _TrackedCollection(raw.meta, before_change)


class _TrackedCollection:
    def __init__(self, collection, before_change):
        self._collection, self._before_change = collection, before_change

    def __getattr__(self, name):
        attribute = getattr(self._collection, name)
        if name in _MUTATIONS:
            def changing(*args, **kwargs):
                self._before_change()
                return attribute(*args, **kwargs)
            return changing
        return attribute
