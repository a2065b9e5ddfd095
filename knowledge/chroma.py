"""Connecting to Chroma: embedded on local disk by default, or a shared `chroma run` server.

A server URL may name a tenant and a database in its query string
(`http://host:8000/?database=line3`), so that one server can hold several separate knowledge
bases; a database that does not exist yet is created.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import chromadb
from chromadb.config import DEFAULT_DATABASE, DEFAULT_TENANT, Settings

from tools.errors import ConfigError

RULES = "anomaly_chat_rules"
REFERENCES = "anomaly_chat_references"
META = "anomaly_chat_meta"  # classes, their settings, the seed's state, tombstones of deleted seed rules
COSINE = {"hnsw": {"space": "cosine"}}


def chroma_settings() -> Settings:
    """The one Settings object every client uses: telemetry off, and identical across clients of a path."""
    return Settings(anonymized_telemetry=False)


@dataclass(frozen=True)
class ServerAddress:
    host: str
    port: int
    ssl: bool
    tenant: str
    database: str


def parse_server_url(url: str) -> ServerAddress:
    """host, port, TLS, tenant and database from a URL such as http://127.0.0.1:8000/?database=line3."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"Chroma URL {url!r} is not usable; write it like http://127.0.0.1:8000")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 8000)
    except ValueError:
        raise ConfigError(f"Chroma URL {url!r} has a bad port; write it like http://127.0.0.1:8000") from None
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    return ServerAddress(parts.hostname, port, parts.scheme == "https", query.get("tenant", DEFAULT_TENANT),
                         query.get("database", DEFAULT_DATABASE))


def connect(path: Path, chroma_url: str | None):
    """A Chroma client: PersistentClient under path/chroma, or HttpClient for chroma_url."""
    if chroma_url is None:
        return chromadb.PersistentClient(path=str(path / "chroma"), settings=chroma_settings())
    address = parse_server_url(chroma_url)
    try:
        _ensure_database(address)
        return chromadb.HttpClient(host=address.host, port=address.port, ssl=address.ssl,
                                   settings=chroma_settings(), tenant=address.tenant, database=address.database)
    except (ValueError, OSError, chromadb.errors.ChromaError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"cannot use the Chroma server at {chroma_url} ({first_line}); start it with "
                          "`chroma run --path DIR --port N` or unset chroma_url") from None


def _ensure_database(address: ServerAddress) -> None:
    if address.database == DEFAULT_DATABASE:
        return
    settings = chroma_settings()
    settings.chroma_api_impl = "chromadb.api.fastapi.FastAPI"
    settings.chroma_server_host = address.host
    settings.chroma_server_http_port = address.port
    settings.chroma_server_ssl_enabled = address.ssl
    admin = chromadb.AdminClient(settings)
    try:
        admin.get_database(address.database, tenant=address.tenant)
    except chromadb.errors.NotFoundError:
        admin.create_database(address.database, tenant=address.tenant)


@dataclass(frozen=True)
class Collections:
    rules: object  # texts embedded by the local sentence model
    references: object  # image descriptors given explicitly
    meta: object  # small records, with a dummy one-value embedding


def open_collections(client, text_embedding) -> Collections:
    """The three collections, created on first use."""
    return Collections(
        rules=client.get_or_create_collection(RULES, embedding_function=text_embedding, configuration=COSINE,
                                              metadata={"embedding_model": text_embedding.model_id()}),
        # No embedding function: descriptors come with every add; Chroma's default one would
        # download a model at run time and fail offline.
        references=client.get_or_create_collection(REFERENCES, embedding_function=None, configuration=COSINE),
        meta=client.get_or_create_collection(META, embedding_function=None),
    )
