"""The words every layer shares: input modalities, rule kinds and the one form of a class name.

Defined once here, at the bottom of the layers, so that the loaders, the knowledge base, the
agent's tools, the CLI and the app all use the same lists and the same normaliser.
"""

from __future__ import annotations

import re

MODALITIES = ("image", "point_cloud", "series", "video")  # what an upload can be (Artifact.kind)
RULE_KINDS = ("normality", "defect", "logical")  # what normal looks like, a known defect, counts and positions
_SEPARATORS = re.compile(r"[\s\-_]+")


def class_key(name: str) -> str:
    """The one normal form of a class name: 'Metal Nut', 'metal-nut' and ' METAL_NUT ' all give 'metal_nut'.

    Case, spaces, hyphens and underscores do not matter; nothing else is changed here (the knowledge
    base refuses names with other characters, and a file name made from a key filters it again).
    """
    return _SEPARATORS.sub("_", str(name).strip().lower()).strip("_")


def display_class(name: str) -> str:
    """How a class name is shown to a person: its key with spaces ('juice_bottle' -> 'juice bottle')."""
    return class_key(name).replace("_", " ")
