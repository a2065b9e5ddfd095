"""The agent's tool for showing the last inspection's evidence: crops and figures per place.

A model (or the offline backend, which calls it the same way) asks for the strongest places of the
last analysis and gets pictures (the query beside the nearest reference normal at the same place,
with the heatmap; or a map of all places) and the figures behind them (tools/agent/places.py).
"""

from __future__ import annotations

from typing import Literal

from tools.agent.fence import as_data, rule_lines
from tools.agent.place_pictures import crops, region_map
from tools.agent.places import describe, deviation_text, places, rules_for_place
from tools.agent.registry import ToolResult, tool
from tools.errors import InputError

MAX_PLACES = 3
CAPTIONS = {
    "crops": "zoomed: query | nearest reference normal | heatmap at the same place (outlined)",
    "map": "where: the places numbered on the query and on the nearest reference normal",
    "series crops": "zoomed: each flagged window against its expected band (blue)",
    "scan crops": "zoomed, facing each place: aligned nearest reference scan | query | deviation colours (outlined)",
    "series map": "where: the flagged windows shaded on the plot, with the expected band",
}


@tool
def show_regions(ctx, count: int = 1, view: Literal["crops", "map"] = "crops") -> ToolResult:
    """Show where the last inspection deviates, with the figures: how far the query deviates at each place relative
    to how much the reference normals differ from one another there, and the rules that name that place.

    Args:
        count: how many places, strongest first (1 to 3).
        view: crops (each place zoomed, beside the nearest reference normal at the same place, with the heatmap) or
            map (the whole view with the places outlined and numbered).
    """
    evidence = getattr(ctx, "evidence", None)
    if evidence is None:
        raise InputError("nothing has been inspected in this conversation yet; attach a file to inspect first")
    found = places(evidence, max(1, min(MAX_PLACES, count)))
    if not found:
        return ToolResult(as_data("The experts found no deviating place (and no heatmap to look into).", "evidence"))
    picture = crops(evidence, found) if view == "crops" else region_map(evidence, found)
    caption = CAPTIONS.get(f"{_modality(found[0].region)} {view}", CAPTIONS[view])
    text = as_data("\n".join(_place_lines(found)), "evidence") + _rules_text(getattr(ctx, "rules", None), found[0])
    return ToolResult(text, images=[picture] if picture is not None else [],
                      data={"caption": caption, "places": [p.region for p in found]})


def _modality(region: dict) -> str:
    """'series' for a time window, 'scan' for a 3-D region, else 'image' (the captions' prefixes)."""
    return "series" if region.get("kind") == "series_window" else "scan" if region.get("centre") is not None else "image"


def _place_lines(found) -> list[str]:
    lines = []
    for place in found:
        state = "" if place.beyond_threshold else " (the place that differs most; below the threshold)"
        figures = deviation_text(place)
        lines.append(f"{place.number}. {describe(place.region)}{state}" + (f"; {figures}" if figures else ""))
    return lines


def _rules_text(rules, place) -> str:
    named, whole = rules_for_place(rules or [], place.region)
    text = f"\nRules that name place 1:\n<rules>\n{rule_lines(named)}\n</rules>" if named else ""
    return text + (f"\nRules about the whole part:\n<rules>\n{rule_lines(whole)}\n</rules>" if whole else "")
