"""Which base URLs a backend may be pointed at while the app runs, and how a URL is shown in logs.

A base URL chosen at run time (the app's Settings tab) decides where the server sends requests, so it
is checked before a backend is built for it: http or https only, a host, no user name or password,
no query and no fragment, no spaces, quotes or markup, and never a link-local or cloud-metadata
address (169.254.0.0/16, fe80::/10, the metadata services' names), however the address is spelled
(decimal, hex, IPv4-mapped IPv6) or whatever a name resolves to when it is set. Loopback and private
addresses are accepted: Ollama, vLLM or LM Studio on the same machine or the plant's network are
what the field is for, only experts may set it, and the configured key never goes there
(NetworkBackend.key_for). A name whose DNS answer changes after the check (DNS rebinding) is not
caught here: run the app where the metadata service is firewalled if that matters.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from tools.errors import ConfigError

SCHEMES = ("http", "https")
MAX_LENGTH = 2048
UNSAFE_CHARACTERS = set('<>"\'`{}|\\^') | {chr(c) for c in range(33)} | {"\x7f"}
# Metadata services that answer on ordinary addresses or names (169.254.169.254 is link-local anyway).
METADATA_HOSTS = {"metadata", "metadata.google.internal", "metadata.goog", "instance-data",
                  "instance-data.ec2.internal", "metadata.azure.internal"}
METADATA_ADDRESSES = {ipaddress.ip_address("100.100.100.200"), ipaddress.ip_address("fd00:ec2::254")}
ADVICE = "type the model server's address, e.g. http://127.0.0.1:11434/v1 (Ollama)"


def check_base_url(url: str) -> str:
    """The URL without its trailing slash when a backend may be pointed at it; ConfigError saying why not."""
    url = (url or "").strip()
    if len(url) > MAX_LENGTH or UNSAFE_CHARACTERS & set(url):
        _refuse("is too long or has spaces, quotes, markup or control characters")
    parts = urlsplit(url)
    if parts.scheme.lower() not in SCHEMES:
        _refuse("must start with http:// or https://")
    if "@" in parts.netloc:
        _refuse("must not carry a user name or password (a key is configured, never typed into a URL)")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        _refuse("must not have a query (?…) or a fragment (#…)")
    if not parts.hostname:
        _refuse("has no host")
    try:
        parts.port  # noqa: B018 - reading it validates it
    except ValueError:
        _refuse("has a port that is not a number from 1 to 65535")
    if _forbidden_host(parts.hostname):
        _refuse("points at a link-local or cloud-metadata address (169.254.x.x, fe80::, metadata services)")
    return url.rstrip("/")


def shown_url(url: str | None) -> str:
    """A URL as logs and messages show it: scheme, host, port and path; never a password, query or fragment."""
    if not url:
        return "(none)"
    parts = urlsplit(url)
    return f"{parts.scheme}://{shown_host(url)}{parts.path}" if parts.hostname else shown_host(url)


def shown_host(url: str) -> str:
    """The host (and port) of a URL for messages, without a user name or password."""
    parts = urlsplit(url)
    if not parts.hostname:
        return url.rpartition("@")[2]
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    try:
        return f"{host}:{parts.port}" if parts.port else host
    except ValueError:
        return host


def _refuse(why: str):
    raise ConfigError(f"the base URL {why}; {ADVICE}")


def _forbidden_host(host: str) -> bool:
    if host.lower().rstrip(".") in METADATA_HOSTS:
        return True
    addresses = _addresses(host)
    if not addresses:
        _refuse(f"names a host that cannot be resolved ({host[:60]})")
    return any(_forbidden_address(address) for address in addresses)


def _addresses(host: str) -> list:
    """Every address the host stands for: a literal in any spelling the resolver accepts, or a name's DNS answer."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def _forbidden_address(address) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    address = mapped or address
    return (address.is_link_local or address.is_unspecified or address.is_multicast
            or address in METADATA_ADDRESSES)
