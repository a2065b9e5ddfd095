"""What the app's knowledge panel shows and does: rule and reference tables per class, and the
changes an expert makes there. Every change checks the role here, on the server; each action
returns a one-line status for the panel instead of raising.
"""

from __future__ import annotations

from assistant.app.access import User, require_expert
from assistant.app.chat_view import one_line, shown_text
from tools.errors import InputError
from tools.vocabulary import display_class

RULE_COLUMNS = ["id", "kind", "text", "author", "created_at", "active"]
REFERENCE_COLUMNS = ["id", "modality", "note", "author", "created_at"]


def _when(stamp: str) -> str:
    """An ISO time as 'YYYY-MM-DD HH:MM' (UTC), short enough for a table."""
    return (stamp or "")[:16].replace("T", " ")


def rules_table(kb, class_name: str | None) -> list[list]:
    """All rules of a class, inactive ones included, as table rows."""
    if not class_name:
        return []
    return [[r.id, r.kind, r.text, r.author, _when(r.created_at), "yes" if r.active else "no"]
            for r in kb.rules(class_name, include_inactive=True)]


def references_table(kb, class_name: str | None) -> list[list]:
    if not class_name:
        return []
    return [[s.id, s.modality, s.note, s.author, _when(s.created_at)] for s in kb.references(class_name)]


def _guarded(action):
    """Run a change; a refusal or bad input comes back as a one-line status."""
    try:
        return action()
    except InputError as exc:
        return f"⚠️ {shown_text(one_line(str(exc)))}"


def need(value: str | None, what: str) -> str:
    value = (value or "").strip()
    if not value:
        raise InputError(f"{what} is empty; fill it in first")
    return value


def add_rule(kb, user: User, class_name: str, text: str, kind: str) -> str:
    def action():
        require_expert(user)
        rule = kb.add_rule(need(class_name, "the class"), need(text, "the rule text"), kind=kind or "normality",
                           author=user.name, source="expert")
        return f"✅ Added rule `{rule.id}` to {display_class(rule.class_name)}."

    return _guarded(action)


def edit_rule(kb, user: User, rule_id: str, text: str, kind: str, active: bool) -> str:
    def action():
        require_expert(user)
        rule = kb.edit_rule(need(rule_id, "the rule id"), text=need(text, "the rule text"), kind=kind,
                            active=bool(active), author=user.name)
        return f"✅ Saved rule `{rule.id}`."

    return _guarded(action)


def deactivate_rule(kb, user: User, rule_id: str) -> str:
    def action():
        require_expert(user)
        kb.deactivate_rule(need(rule_id, "the rule id"))
        return f"✅ Rule `{rule_id}` is inactive: later analyses no longer use it (it stays listed)."

    return _guarded(action)


def request_delete(user: User, rule_id: str) -> tuple[str, str | None]:
    """First step of deleting: (status asking for confirmation, the id waiting for it)."""
    return ask_to_confirm(user, rule_id, "the rule id", "Delete rule `{}` for good? Press **Yes, delete**")


def ask_to_confirm(user: User, value: str | None, what: str, question: str) -> tuple[str, str | None]:
    """First step of an expert's irreversible action: (the question, the value waiting for the confirmation)."""
    try:
        require_expert(user)
        value = need(value, what)
    except InputError as exc:
        return f"⚠️ {shown_text(one_line(str(exc)))}", None
    return f"{question.format(value)} to confirm, or Cancel.", value


def confirm_delete(kb, user: User, pending: str | None) -> str:
    """Second step: delete the rule that was asked for, and only that one."""
    def action():
        require_expert(user)
        if not pending:
            raise InputError("nothing to delete: choose a rule and press Delete first")
        kb.delete_rule(pending)
        return f"🗑️ Deleted rule `{pending}`."

    return _guarded(action)


def add_query_as_reference(kb, user: User, conversation, class_name: str | None) -> str:
    """Store the conversation's last analysed file as a normal reference of the class."""
    from assistant.app.references import store_files

    artifact = conversation.last_query() if conversation is not None else None
    try:
        require_expert(user)
        if artifact is None:
            raise InputError("no query yet: inspect a file in the chat first")
    except InputError as exc:
        return f"⚠️ {shown_text(one_line(str(exc)))}"
    name = class_name or conversation.last_class()
    return store_files(kb, user, name, [str(artifact.path)], [artifact.name], conversation.settings)
