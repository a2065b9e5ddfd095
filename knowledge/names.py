"""Names and values the knowledge base accepts, checked once here with messages that say what to do."""

from __future__ import annotations

import re

from tools.errors import InputError
from tools.vocabulary import MODALITIES, RULE_KINDS, class_key

MAX_RULE_CHARS = 4000
MAX_NOTE_CHARS = 1000
MAX_NAME_CHARS = 64
_CLASS_CHARS = re.compile(r"^[^\W_]+(?:_[^\W_]+)*$")  # letters and digits joined by single underscores


def canonical_class(name: str) -> str:
    """The class name used as a key: 'Metal Nut', 'metal-nut' and 'METAL_NUT' all give 'metal_nut'."""
    if not isinstance(name, str) or not name.strip():
        raise InputError("class name is empty; give the class of the part, e.g. 'screw' or 'metal nut'")
    key = class_key(name)
    if not _CLASS_CHARS.match(key) or len(key) > MAX_NAME_CHARS:
        raise InputError(f"class name {name!r} is not usable; use up to {MAX_NAME_CHARS} letters, digits, "
                         "spaces, hyphens or underscores")
    return key


def display_name(name: str) -> str:
    """The class name as a person wrote it, tidied (outer spaces removed, inner runs collapsed)."""
    return " ".join(name.split())


def rule_text(text: str) -> str:
    """A rule's text, stripped; refuses empty and over-long texts."""
    if not isinstance(text, str) or not text.strip():
        raise InputError("rule text is empty; write what normal (or defective) looks like in a sentence")
    text = text.strip()
    if len(text) > MAX_RULE_CHARS:
        raise InputError(f"rule text has {len(text)} characters, more than {MAX_RULE_CHARS}; "
                         "split it into several shorter rules")
    return text


def kind(value: str) -> str:
    """A rule kind: normality (what normal looks like), defect (a known defect) or logical."""
    if value not in RULE_KINDS:
        raise InputError(f"rule kind {value!r} is unknown; use one of: {', '.join(RULE_KINDS)}")
    return value


def modality(value: str) -> str:
    """An input modality: image, point_cloud, series or video."""
    if value not in MODALITIES:
        raise InputError(f"modality {value!r} is unknown; use one of: {', '.join(MODALITIES)}")
    return value


def short_text(value: str, what: str, limit: int = MAX_NAME_CHARS, *, allow_empty: bool = False) -> str:
    """A short free text (author, source, note), stripped and bounded."""
    if not isinstance(value, str):
        raise InputError(f"{what} must be text")
    value = value.strip()
    if not value and not allow_empty:
        raise InputError(f"{what} is empty; give a name")
    if len(value) > limit:
        raise InputError(f"{what} has {len(value)} characters, more than {limit}; shorten it")
    return value
