"""Sign-in and roles: password hashes, the users file, and the server-side guard on knowledge changes."""

from __future__ import annotations

import hashlib
import json

import pytest

from assistant.app import knowledge_panel as panel
from assistant.app.access import (
    SINGLE_USER,
    Access,
    NotAllowed,
    User,
    check_password,
    hash_password,
    read_users,
    require_expert,
)
from tools.errors import ConfigError

OPERATOR = User("olga", "operator")
EXPERT = User("erik", "expert")


def test_a_password_matches_its_own_hash_only():
    stored = hash_password("correct horse")
    assert check_password("correct horse", stored)
    assert not check_password("correct horsE", stored)


def test_two_hashes_of_one_password_differ_because_of_the_salt():
    assert hash_password("same") != hash_password("same")


def test_pbkdf2_hashes_are_accepted_too():
    salt = b"0123456789abcdef"
    digest = hashlib.pbkdf2_hmac("sha256", b"pw", salt, 1000)
    import base64

    def b64(raw):
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    assert check_password("pw", f"pbkdf2_sha256$1000${b64(salt)}${b64(digest)}")


@pytest.mark.parametrize("stored", ["", "plain-text-password", "scrypt$x$8$1$abc$def", "md5$abc"])
def test_malformed_or_unknown_hashes_never_match(stored):
    assert not check_password("plain-text-password", stored)


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_users_are_read_from_toml(tmp_path):
    users = read_users(_write(tmp_path / "users.toml",
                              f'[users.erik]\nrole = "expert"\npassword = "{hash_password("a")}"\n'
                              f'[users.olga]\nrole = "operator"\npassword = "{hash_password("b")}"\n'))
    assert {name: record.role for name, record in users.items()} == {"erik": "expert", "olga": "operator"}


def test_users_are_read_from_json(tmp_path):
    data = {"users": {"erik": {"role": "expert", "password": hash_password("a")}}}
    users = read_users(_write(tmp_path / "users.json", json.dumps(data)))
    assert users["erik"].role == "expert"


@pytest.mark.parametrize("text, complaint", [
    ('[users.x]\nrole = "admin"\npassword = "h"\n', "role = expert|operator"),
    ("[other]\n", "no [users.NAME] entries"),
    ("[users\n", "cannot be read"),
])
def test_a_bad_users_file_is_refused_with_a_reason(tmp_path, text, complaint):
    with pytest.raises(ConfigError, match=complaint.replace("|", r"\|").replace("[", r"\[")):
        read_users(_write(tmp_path / "users.toml", text))


def test_sign_in_checks_name_and_password(tmp_path):
    access = Access(read_users(_write(tmp_path / "u.toml", f'[users.erik]\nrole = "expert"\npassword = "{hash_password("pw")}"\n')))
    assert access.sign_in("erik", "pw")
    assert not access.sign_in("erik", "wrong")
    assert not access.sign_in("nobody", "pw")


def test_without_a_users_file_everyone_is_the_single_user_with_full_rights():
    access = Access(None)
    assert not access.enabled
    assert access.user(None) == SINGLE_USER and SINGLE_USER.can_edit_knowledge


def test_an_unknown_signed_in_name_gets_operator_rights():
    assert Access({}).user("mallory").role == "operator"


def test_operators_are_refused_knowledge_changes():
    with pytest.raises(NotAllowed, match="only experts may change knowledge; you are signed in as olga"):
        require_expert(OPERATOR)
    require_expert(EXPERT)  # no exception


class RecordingKnowledgeBase:
    """Records calls: proves that a refused action never reaches the store."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        def record(*args, **kwargs):
            self.calls.append(name)
            raise AssertionError(f"{name} must not be called for an operator")
        return record


@pytest.mark.parametrize("action", [
    lambda kb: panel.add_rule(kb, OPERATOR, "bottle", "the cap is closed", "normality"),
    lambda kb: panel.edit_rule(kb, OPERATOR, "rule-1", "text", "normality", True),
    lambda kb: panel.deactivate_rule(kb, OPERATOR, "rule-1"),
    lambda kb: panel.confirm_delete(kb, OPERATOR, "rule-1"),
    lambda kb: panel.add_query_as_reference(kb, OPERATOR, None, "bottle"),
])
def test_every_knowledge_change_in_the_panel_refuses_operators(action):
    kb = RecordingKnowledgeBase()
    status = action(kb)
    assert status.startswith("⚠️ only experts may")
    assert kb.calls == []


def test_delete_without_the_confirmation_step_deletes_nothing():
    kb = RecordingKnowledgeBase()
    assert "nothing to delete" in panel.confirm_delete(kb, EXPERT, None)
    assert kb.calls == []


def test_asking_to_delete_names_the_rule_and_waits_for_confirmation():
    status, pending = panel.request_delete(EXPERT, "rule-abc")
    assert pending == "rule-abc" and "Yes, delete" in status
    assert panel.request_delete(OPERATOR, "rule-abc")[1] is None


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_users_add_writes_a_file_the_app_can_sign_in_with(tmp_path, suffix):
    from assistant.commands.users import add_user

    path = tmp_path / f"users{suffix}"
    add_user(path, "erik", "expert", "first-password")
    add_user(path, "olga", "operator", "second-password")
    add_user(path, "erik", "expert", "new-password")  # replaces erik, keeps olga
    access = Access(read_users(path))
    assert access.sign_in("erik", "new-password") and not access.sign_in("erik", "first-password")
    assert access.sign_in("olga", "second-password") and access.user("olga").role == "operator"
    assert "new-password" not in path.read_text()
