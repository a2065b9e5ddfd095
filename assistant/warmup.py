"""Load the heavy parts in the background when the app starts, so the first inspection does not wait.

The page is served without them, and this thread prepares them while the person picks a file, in
the order a first inspection needs them: matplotlib (Gradio imports it on the first request), the knowledge base (Chroma; a new one is seeded with the
shipped seed vectors), the vision expert's pretrained backbone (torch), the text embedder (the rule
search of a class without rules of its own), and the demo part's references as the vision expert
sees them (features, stand-ins, distance maps: the examples the page offers; kept on disk, so a
restart only reads them). Everything is cached per process, and an inspection that arrives
earlier waits only for the part it needs, without computing it twice (the feature cache lets one
thread compute an entry while the other waits for it). A failure here is not reported: the
inspection that needs the part reports it properly.
"""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)


def start(settings) -> threading.Thread:
    """Start preparing the knowledge base, the backbone, the embedder and the demo in a daemon thread."""
    thread = threading.Thread(target=warm_up, args=(settings,), name="warm-up", daemon=True)
    thread.start()
    return thread


def warm_up(settings, *, demo: bool = True) -> None:
    """Load each heavy part once; errors are left for the inspection that needs the part."""
    from assistant.commands.common import open_kb
    from knowledge.embedding import embed_texts
    from tools.experts.vision.backbone import warm_up as warm_up_backbone

    steps = [("plotting", _plotting), ("knowledge base", lambda: open_kb(settings)), ("vision backbone", warm_up_backbone),
             ("text embedder", lambda: embed_texts(["warm-up"], settings.embedding_model_path))]
    if demo:
        steps.append(("demo references", lambda: prepare_demo(settings)))
    for name, step in steps:
        try:
            step()
        except Exception as error:  # noqa: BLE001 - reported by the inspection that needs it
            log.debug("warm-up of the %s failed: %s", name, error)


def _plotting() -> None:
    """matplotlib with its colour maps (the expert's heatmap overlay) and the Agg backend named: Gradio asks
    for the backend on every request, and an unnamed one is found by importing pyplot (0.2 to 0.7 s on the
    first request, holding up the server). The app draws with Agg canvases only; it never opens a window."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import colormaps  # noqa: F401


def prepare_demo(settings) -> None:
    """The vision expert fitted on the demo part's references, with the demo class's settings, as an
    inspection of a demo example fits it (its good part scored against all three references)."""
    from assistant.app.demo_data import DEMO_CLASS, ensure_demo_data
    from assistant.commands.common import open_kb
    from tools.agent.evidence import vision_expert
    from tools.inputs.artifacts import load
    from tools.render.views import to_image

    files = ensure_demo_data(settings.home)
    views = [to_image(load(path), class_name=DEMO_CLASS, cache_dir=settings.cache_dir)
             for path in (files.good, *files.references)]
    options = {**open_kb(settings).class_settings(DEMO_CLASS), "cache_dir": settings.cache_dir}
    vision_expert(views[0], views[1:], options)
