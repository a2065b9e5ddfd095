"""Pictures of the places an analysis points at (tools/agent/places.py): shown, not told.

`crops` cuts the query and the nearest reference normal at the same box (with some surrounding for
context, the place itself outlined) and adds the heatmap there, one row per place (a scan's place:
the 3-D expert's aligned reference, the query and its deviation colours, seen facing the place);
for a series it zooms the plot on each window with its expected band. `region_map` shows the whole query view and
the nearest reference with every place outlined and numbered.
"""

from __future__ import annotations

from PIL import Image, ImageDraw

CONTEXT = 1.0  # the crop reaches this many box sizes beyond the box on each side
MIN_CROP = 0.16  # the smallest crop, as a fraction of the image side (a tiny box still shows its surroundings)
OUTLINE = (255, 214, 0)
ROW_HEIGHT = 280
SERIES_MARGIN_ROWS = 30


def crops(evidence, places) -> Image.Image | None:
    """One row per place: query | nearest reference | heatmap at the place (a zoomed plot for a series window)."""
    rows = [row for place in places if (row := _row(evidence, place)) is not None]
    return stack(rows) if rows else None


def region_map(evidence, places) -> Image.Image | None:
    """The query view and the nearest reference with every place outlined and numbered."""
    from tools.render.imageops import composite

    boxed = [(p.number, p.region["box"]) for p in places if p.region.get("box")]
    if not boxed:
        return evidence.composite  # a series: the plot with its windows shaded
    panels = [("query, places numbered", _outlined(evidence.query_image, boxed))]
    if evidence.nearest_picture() is not None:
        panels.append(("nearest reference, same places", _outlined(evidence.nearest_picture(), boxed)))
    return composite(panels, height=ROW_HEIGHT + 100)


def _row(evidence, place) -> Image.Image | None:
    if place.region.get("kind") == "series_window":
        return _window_plot(evidence, place.region)
    box = place.region.get("box")
    if not box or evidence.query_image is None:
        return None
    own = getattr(evidence.expert, "place_pictures", None)  # an expert that draws the place itself (3-D: facing it)
    drawn = own(place.region) if callable(own) else None
    return _box_row(evidence, place.number, box) if drawn is None else _drawn_row(place.number, *drawn)


def _box_row(evidence, number: int, box) -> Image.Image:
    from tools.render.imageops import composite, overlay_heatmap

    view = context_box(box)
    panels = [(f"{number}: query", _cut(evidence.query_image, view, box))]
    if evidence.nearest_picture() is not None:
        panels.append(("nearest reference", _cut(evidence.nearest_picture(), view, box)))
    if evidence.expert is not None:
        heat = overlay_heatmap(evidence.query_image, evidence.expert.heatmap)
        panels.append(("heatmap", _cut(heat, view, box)))
    return composite(panels, height=ROW_HEIGHT)


def _drawn_row(number: int, box, panels) -> Image.Image:
    from tools.render.imageops import composite

    view = context_box(box)
    return composite([(f"{number}: {label}" if i == 0 else label, _cut(image, view, box))
                      for i, (label, image) in enumerate(panels)], height=ROW_HEIGHT)


def context_box(box) -> tuple[float, float, float, float]:
    """The box grown by CONTEXT on each side (at least MIN_CROP wide and high), kept inside the image."""
    x0, y0, x1, y1 = box
    half_w = max((x1 - x0) * (0.5 + CONTEXT), MIN_CROP / 2)
    half_h = max((y1 - y0) * (0.5 + CONTEXT), MIN_CROP / 2)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return (max(0.0, cx - half_w), max(0.0, cy - half_h), min(1.0, cx + half_w), min(1.0, cy + half_h))


def _cut(image: Image.Image, view, box) -> Image.Image:
    """The view box of an image with the place's box outlined inside it."""
    width, height = image.size
    left, top = int(view[0] * width), int(view[1] * height)
    right, bottom = max(left + 1, round(view[2] * width)), max(top + 1, round(view[3] * height))
    crop = image.convert("RGB").crop((left, top, right, bottom))
    scale = ROW_HEIGHT / crop.height
    crop = crop.resize((max(1, round(crop.width * scale)), ROW_HEIGHT), Image.Resampling.LANCZOS)
    inner = [((box[0] * width - left) * scale, (box[1] * height - top) * scale),
             ((box[2] * width - left) * scale, (box[3] * height - top) * scale)]
    ImageDraw.Draw(crop).rectangle(inner, outline=OUTLINE, width=2)
    return crop


def _outlined(image: Image.Image, boxed) -> Image.Image:
    from tools.render.imageops import font

    picture = image.convert("RGB").copy()
    draw, width, height = ImageDraw.Draw(picture), picture.width, picture.height
    label = font(max(18, height // 9))  # read at a third of its size in the chat
    for number, (x0, y0, x1, y1) in boxed:
        corners = [(x0 * width, y0 * height), (x1 * width, y1 * height)]
        draw.rectangle(corners, outline=OUTLINE, width=max(2, width // 150))
        spot = (corners[0][0] - label.size * 0.7, max(0, corners[0][1] - label.size * 0.5))
        draw.text(spot, str(number), fill=OUTLINE, font=label, stroke_width=2, stroke_fill=(0, 0, 0))
    return picture


def _window_plot(evidence, window: dict) -> Image.Image | None:
    """The series around one window, its expected band drawn, the window shaded."""
    from tools.render.series import render_series

    query, series = evidence.query, evidence.series
    if query is None or query.kind != "series" or window.get("start_row") is None:
        return None
    frame = query.payload
    start, end = int(window["start_row"]), int(window["end_row"])
    margin = max(SERIES_MARGIN_ROWS, end - start)
    low, high = max(0, start - margin), min(len(frame), end + margin + 1)
    column = window.get("column")
    columns = [column] if column in frame.columns else None
    bands = {c: (b[0][low:high], b[1][low:high]) for c, b in (series.bands if series else {}).items()}
    return render_series(frame.iloc[low:high], columns=columns, windows=[(start - low, end - low)], bands=bands,
                         title=f"window: {window.get('where', '')}", width=900)


def stack(rows: list[Image.Image], gap: int = 6) -> Image.Image:
    """Pictures one below the other on white, left-aligned."""
    width = max(r.width for r in rows)
    sheet = Image.new("RGB", (width, sum(r.height for r in rows) + gap * (len(rows) - 1)), (255, 255, 255))
    top = 0
    for row in rows:
        sheet.paste(row, (0, top))
        top += row.height + gap
    return sheet
