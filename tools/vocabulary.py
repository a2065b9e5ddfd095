"""The words every layer shares: input modalities, rule kinds and the one form of a class name.

Defined once here, at the bottom of the layers, so that the loaders, the knowledge base, the
agent's tools, the CLI and the app all use the same lists and the same normaliser.
"""

from __future__ import annotations

import re

MODALITIES = ("image", "point_cloud", "series", "video")  # what an upload can be (Artifact.kind)
RULE_KINDS = ("normality", "defect", "logical")  # what normal looks like, a known defect, counts and positions
PROMPT_PARTS = ("class", "rules", "reference", "expert")  # the optional prompt parts a strategy names (and a tool reveals)
_SEPARATORS = re.compile(r"[\s\-_]+")


def class_key(name: str) -> str:
    """The one normal form of a class name: 'Metal Nut', 'metal-nut' and ' METAL_NUT ' all give 'metal_nut'.

    Case, spaces, hyphens and underscores do not matter; nothing else is changed here (the knowledge
    base refuses names with other characters, and a file name made from a key filters it again).
    """
    return _SEPARATORS.sub("_", str(name).strip().lower()).strip("_")


def same_class(a: str | None, b: str | None) -> bool:
    """Whether two class names name the same class (None names none)."""
    return a is not None and b is not None and class_key(a) == class_key(b)


def split_rules(rules, class_name: str | None) -> tuple[list, list]:
    """(the class's own rules, rules written for other classes); a rule of no class (given for one run) is its own."""
    own = [r for r in rules if getattr(r, "class_name", None) is None or same_class(r.class_name, class_name)]
    return own, [r for r in rules if r not in own]


def display_class(name: str) -> str:
    """How a class name is shown to a person: its key with spaces ('juice_bottle' -> 'juice bottle')."""
    return class_key(name).replace("_", " ")
