"""Markdown table cells and rows for the evaluation reports."""

from __future__ import annotations


def fmt(value, digits: int = 3) -> str:
    """A figure with `digits` decimals, or an en dash when it is undefined."""
    return "–" if value is None else f"{value:.{digits}f}"


def row(cells) -> str:
    """One Markdown table row."""
    return "| " + " | ".join(str(c) for c in cells) + " |"
