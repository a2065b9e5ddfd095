"""Load the heavy parts in the background when the app starts, so the first inspection does not wait.

Opening the knowledge base, loading the text embedder and loading the vision expert's pretrained
backbone together take seconds to tens of seconds on a cold machine; the page is served without
them, and this thread loads them while the person picks a file. Everything it loads is cached
per process, so the first inspection finds it ready (or waits only for what is still loading).
A failure here is not reported: the inspection that needs the part reports it properly.
"""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)


def start(settings) -> threading.Thread:
    """Start loading the knowledge base, the embedder and the vision backbone in a daemon thread."""
    thread = threading.Thread(target=warm_up, args=(settings,), name="warm-up", daemon=True)
    thread.start()
    return thread


def warm_up(settings) -> None:
    """Load each heavy part once; errors are left for the inspection that needs the part."""
    from assistant.commands.common import open_kb
    from knowledge.embedding import embed_texts
    from tools.experts.vision.backbone import warm_up as warm_up_backbone

    steps = (("vision backbone", warm_up_backbone), ("knowledge base", lambda: open_kb(settings)),
             ("text embedder", lambda: embed_texts(["warm-up"], settings.embedding_model_path)))
    for name, step in steps:
        try:
            step()
        except Exception as error:  # noqa: BLE001 - reported by the inspection that needs it
            log.debug("warm-up of the %s failed: %s", name, error)
