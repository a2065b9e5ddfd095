"""The app's background warm-up loads the knowledge base, the vision backbone and the embedder, and
prepares the demo part's references."""

from assistant import warmup
from assistant.config import load_settings
from knowledge import embedding
from tools.experts.vision import expert as expert_module
from tools.experts.vision import fitting, pretrained


def test_warm_up_thread_loads_the_backbone_and_the_embedder(tmp_path):
    thread = warmup.start(load_settings({"home": str(tmp_path)}, env={}))
    thread.join(timeout=240)
    assert not thread.is_alive() and thread.daemon
    assert "lite0" in pretrained._networks and embedding._models


def test_after_the_warm_up_the_demo_references_need_no_encoding_nor_matching(tmp_path, monkeypatch):
    settings = load_settings({"home": str(tmp_path)}, env={})
    warmup.warm_up(settings)
    calls = []
    monkeypatch.setattr(expert_module, "_FITTED", expert_module.OrderedDict())  # fit again from the caches
    monkeypatch.setattr(fitting, "match", lambda *args: calls.append("map"))
    monkeypatch.setattr(pretrained.EfficientNetLiteExtractor, "patch_features", lambda *args: calls.append("encode"))
    warmup.prepare_demo(settings)
    assert calls == []
