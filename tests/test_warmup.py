"""The app's background warm-up loads the vision backbone, the knowledge base and the embedder."""

from assistant import warmup
from assistant.config import load_settings
from knowledge import embedding
from tools.experts.vision import pretrained


def test_warm_up_thread_loads_the_backbone_and_the_embedder(tmp_path):
    thread = warmup.start(load_settings({"home": str(tmp_path)}, env={}))
    thread.join(timeout=240)
    assert not thread.is_alive() and thread.daemon
    assert "lite0" in pretrained._networks and embedding._models
