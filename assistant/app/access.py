"""Who may do what in the chat app: users, salted password hashes and the two roles.

Without a users file the app is single-user: whoever opens the page is the owner and may change
knowledge. With one (`settings.users_file`, or $ANOMALY_CHAT_USERS), people sign in; experts may
change knowledge, operators may only chat. The UI checks the role on the server for every action
that changes knowledge, so hiding a button is never the only guard.

Users file, TOML or JSON (by extension):

    [users.alice]
    role = "expert"
    password = "scrypt$16384$8$1$<salt>$<hash>"

Make a hash with `python -m assistant.commands.users add alice --role expert --file users.toml`, or
in Python: `from assistant.app.access import hash_password; print(hash_password("secret"))`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path

from tools.errors import ConfigError, InputError

ROLES = ("expert", "operator")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


class NotAllowed(InputError):
    """The signed-in person's role does not allow this action."""


@dataclass(frozen=True)
class User:
    """A person who may sign in (or the single user when sign-in is off)."""

    name: str
    role: str
    single_user: bool = False

    @property
    def can_edit_knowledge(self) -> bool:
        return self.role == "expert"


SINGLE_USER = User("user", "expert", single_user=True)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """A salted scrypt hash, as `scrypt$n$r$p$salt$hash` (all the parameters kept with it)."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${_b64(salt)}${_b64(digest)}"


def check_password(password: str, stored: str) -> bool:
    """True when the password matches a stored scrypt or pbkdf2_sha256 hash."""
    parts = (stored or "").split("$")
    try:
        if parts[0] == "scrypt" and len(parts) == 6:
            n, r, p = (int(v) for v in parts[1:4])
            expected = _unb64(parts[5])
            digest = hashlib.scrypt(password.encode(), salt=_unb64(parts[4]), n=n, r=r, p=p, dklen=len(expected))
        elif parts[0] == "pbkdf2_sha256" and len(parts) == 4:
            expected = _unb64(parts[3])
            digest = hashlib.pbkdf2_hmac("sha256", password.encode(), _unb64(parts[2]), int(parts[1]))
        else:
            return False
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, expected)


@dataclass(frozen=True)
class UserRecord:
    role: str
    password: str


def read_users(path: str | Path) -> dict[str, UserRecord]:
    """The users in a TOML or JSON users file; ConfigError saying what is wrong otherwise."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"users file {path} cannot be read ({exc}); fix it or unset ANOMALY_CHAT_USERS") from None
    users = data.get("users") if isinstance(data, dict) else None
    if not isinstance(users, dict) or not users:
        raise ConfigError(f"users file {path} has no [users.NAME] entries; add one with `anomaly-chat users add`")
    return {name: _record(path, name, entry) for name, entry in users.items()}


def _record(path: Path, name: str, entry) -> UserRecord:
    if not isinstance(entry, dict) or entry.get("role") not in ROLES or not isinstance(entry.get("password"), str):
        raise ConfigError(f"users file {path}: user {name!r} needs role = expert|operator and a password hash")
    return UserRecord(entry["role"], entry["password"])


class Access:
    """The sign-in check and the role of whoever makes a request."""

    def __init__(self, users: dict[str, UserRecord] | None):
        self.users = users

    @classmethod
    def from_settings(cls, settings) -> Access:
        return cls(read_users(settings.users_file) if settings.users_file else None)

    @property
    def enabled(self) -> bool:
        return self.users is not None

    def sign_in(self, name: str, password: str) -> bool:
        """Gradio's auth callback: True when the name and password match."""
        record = (self.users or {}).get(name)
        return record is not None and check_password(password, record.password)

    def user(self, username: str | None) -> User:
        """The person behind a request (an unknown name gets the least rights)."""
        if not self.enabled:
            return SINGLE_USER
        record = self.users.get(username or "")
        return User(username or "unknown", record.role if record else "operator")


def require_expert(user: User, action: str = "change knowledge") -> None:
    """Raise NotAllowed unless the user may change knowledge."""
    if not user.can_edit_knowledge:
        raise NotAllowed(f"only experts may {action}; you are signed in as {user.name} ({user.role})")
