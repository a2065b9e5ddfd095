"""`anomaly-chat users add NAME --role expert|operator`: add or replace a user of the chat app.

The password is asked for twice (or read from stdin with --password-stdin) and only its salted
scrypt hash is written. The users file is --file, else settings.users_file ($ANOMALY_CHAT_USERS),
else <home>/users.toml; TOML or JSON by extension. Start the app with that file to enable sign-in.
"""

from __future__ import annotations

import getpass
import json
import re
import sys
from pathlib import Path

from assistant.app.access import ROLES, hash_password, read_users
from tools.errors import InputError

_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


def register(sub) -> None:
    parser = sub.add_parser("users", help="manage who may sign in to the chat app")
    actions = parser.add_subparsers(dest="users_command", required=True)
    add = actions.add_parser("add", help="add a user, or replace their password and role")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, required=True, help="expert: may change knowledge; operator: chat only")
    add.add_argument("--file", help="users file (default: $ANOMALY_CHAT_USERS or <home>/users.toml)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.set_defaults(func=run_add)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise InputError("the two passwords differ; run the command again")
    if len(password) < 8:
        raise InputError("the password is shorter than 8 characters; choose a longer one")
    return password


def write_users(path: Path, users: dict[str, dict]) -> None:
    """Write {name: {"role", "password"}} as TOML or JSON (by the file's extension)."""
    if path.suffix.lower() == ".json":
        text = json.dumps({"users": users}, indent=2) + "\n"
    else:
        text = "".join(f'[users."{name}"]\nrole = "{u["role"]}"\npassword = "{u["password"]}"\n\n'
                       for name, u in users.items())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)


def add_user(path: Path, name: str, role: str, password: str) -> None:
    """Add or replace one user in the users file (created if missing)."""
    if not _NAME.match(name):
        raise InputError(f"user name {name!r} is not usable; use letters, digits and _ . @ -")
    users = {n: {"role": r.role, "password": r.password} for n, r in read_users(path).items()} if path.exists() else {}
    users[name] = {"role": role, "password": hash_password(password)}
    write_users(path, users)


def run_add(args) -> int:
    from assistant.commands.common import settings_from

    settings = settings_from(args)
    path = Path(args.file or settings.users_file or settings.home / "users.toml").expanduser()
    add_user(path, args.name, args.role, _password(args.password_stdin))
    print(f"{args.name} ({args.role}) is in {path}; start the app with ANOMALY_CHAT_USERS={path} to require sign-in")
    return 0


if __name__ == "__main__":  # usable before `users` is listed in assistant.cli.COMMAND_MODULES
    import argparse

    top = argparse.ArgumentParser(prog="python -m assistant.commands.users")
    register(top.add_subparsers(dest="command", required=True))
    parsed = top.parse_args(["users", *sys.argv[1:]])
    try:
        sys.exit(parsed.func(parsed))
    except InputError as exc:
        sys.exit(f"error: {exc}")
