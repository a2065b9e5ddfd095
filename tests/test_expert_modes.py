"""The vision expert's cache, pose handling, matching choice and depth renders."""

import numpy as np
import pytest
from PIL import Image

from tests.helpers.defects import add_defect, jitter, textured_part
from tools.experts.vision import cache as feature_cache
from tools.experts.vision import expert as expert_module
from tools.experts.vision.expert import VisionExpert
from tools.experts.vision.fitting import TURNED_PATCHES
from tools.experts.vision.matching import coreset
from tools.experts.vision.reference_features import FLAWS_PER_REFERENCE, ROTATION_ANGLES


@pytest.fixture(scope="module")
def part():
    return textured_part(256, seed=1)


@pytest.fixture
def fresh_memory(monkeypatch):
    """Nothing cached in memory (features or fitted sets), so the disk cache is what is tested."""
    monkeypatch.setattr(expert_module, "_FITTED", expert_module.OrderedDict())
    feature_cache.clear_memory()
    yield
    feature_cache.clear_memory()


def forget_in_memory():
    expert_module._FITTED.clear()
    feature_cache.clear_memory()


def counting(expert: VisionExpert) -> list[tuple[int, ...]]:
    """Record the shape of every image the expert's extractor encodes."""
    encoded, encode = [], expert.extractor.patch_features

    def recording(image):
        encoded.append(image.shape)
        return encode(image)
    expert.extractor.patch_features = recording
    return encoded


def test_reference_features_come_from_the_disk_cache_after_a_restart(part, tmp_path, fresh_memory):
    references = [jitter(part, 1), jitter(part, 2)]
    first = VisionExpert(cache_dir=tmp_path).fit(references)
    forget_in_memory()
    second = VisionExpert(cache_dir=tmp_path)
    encoded = counting(second)
    second.fit([r.copy() for r in references])
    assert encoded == [] and list((tmp_path / "features").glob("*.npz"))
    assert second.fitted.threshold == pytest.approx(first.fitted.threshold)


def test_reference_features_come_from_memory_without_a_disk_cache(part, fresh_memory):
    references = [jitter(part, 1), jitter(part, 2)]
    VisionExpert().fit(references)
    expert_module._FITTED.clear()
    again = VisionExpert()
    encoded = counting(again)
    again.fit(references)
    assert encoded == []


def test_a_changed_reference_is_encoded_again_and_changes_the_result(part, tmp_path, fresh_memory):
    references = [jitter(part, 1), jitter(part, 2)]
    query = add_defect(jitter(part, 9), "spot", 2)[0]
    before = VisionExpert(cache_dir=tmp_path).fit(references).score(query)
    forget_in_memory()
    changed = np.asarray(references[1]).copy()
    changed[40:120, 40:120] = 255  # a white square on the second reference
    expert = VisionExpert(cache_dir=tmp_path)
    encoded = counting(expert)
    expert.fit([references[0], Image.fromarray(changed)])
    # only the changed reference is encoded: its grid, its stand-in flaws and one jittered copy
    assert len(encoded) == 2 + FLAWS_PER_REFERENCE
    assert expert.score(query).raw_score != pytest.approx(before.raw_score)


def test_cached_and_fresh_reports_agree(part, tmp_path, fresh_memory):
    references, query = [jitter(part, 1)], add_defect(jitter(part, 9), "spot", 2)[0]
    fresh = VisionExpert(cache_dir=tmp_path).fit(references).score(query)
    forget_in_memory()
    cached = VisionExpert(cache_dir=tmp_path).fit(references).score(query)
    assert cached.raw_score == pytest.approx(fresh.raw_score, rel=1e-3) and cached.anomalous == fresh.anomalous


def counting_maps(monkeypatch) -> list[str]:
    """Record the matching mode of every stand-in distance map the fit computes."""
    from tools.experts.vision import fitting

    computed, match = [], fitting.match

    def recording(bank, grid, mode, *args):
        computed.append(mode)
        return match(bank, grid, mode, *args)
    monkeypatch.setattr(fitting, "match", recording)
    return computed


def test_stand_in_maps_come_from_the_disk_cache_after_a_restart(part, tmp_path, fresh_memory, monkeypatch):
    references = [jitter(part, seed) for seed in (1, 2, 3)]
    first = VisionExpert(cache_dir=tmp_path).fit(references)
    forget_in_memory()
    computed = counting_maps(monkeypatch)
    second = VisionExpert(cache_dir=tmp_path).fit([r.copy() for r in references])
    assert computed == [] and second.fitted.threshold == first.fitted.threshold
    assert second.fitted.matching == first.fitted.matching


def test_a_smaller_set_of_the_same_references_reuses_their_maps(part, tmp_path, fresh_memory, monkeypatch):
    references = [jitter(part, seed) for seed in (1, 2, 3)]
    VisionExpert(cache_dir=tmp_path, matching="position").fit(references)
    expert_module._FITTED.clear()
    computed = counting_maps(monkeypatch)
    VisionExpert(cache_dir=tmp_path, matching="position").fit(references[:2])
    assert computed == []


def test_threads_asking_for_the_same_features_at_once_compute_them_once(fresh_memory):
    import threading

    calls, asking, results = [], threading.Event(), []

    def compute():
        calls.append(1)
        asking.wait(5)  # the other thread is asking now; without the gate it would compute too
        threading.Event().wait(0.2)
        return {"grid": np.ones(3, np.float32)}

    def ask(signal=None):
        if signal:
            signal.set()
        results.append(feature_cache.cached("same-key", compute))
    first = threading.Thread(target=ask)
    first.start()
    while not calls:
        threading.Event().wait(0.01)
    second = threading.Thread(target=ask, args=(asking,))
    second.start()
    first.join(10)
    second.join(10)
    assert len(calls) == 1 and len(results) == 2 and results[0] is results[1]


@pytest.fixture(scope="module")
def turning_expert(part):
    return VisionExpert(rotation_invariant=True).fit([jitter(part, 1)])


def test_rotation_invariant_mode_accepts_a_rotated_normal_that_position_mode_flags(part, turning_expert):
    turned = jitter(part, 3).rotate(120, resample=Image.BILINEAR, fillcolor=(40, 45, 50))
    assert VisionExpert(matching="position").fit([jitter(part, 1)]).score(turned).anomalous
    assert not turning_expert.score(turned).anomalous


def test_rotation_invariant_mode_still_flags_a_defect(part, turning_expert):
    spotted = add_defect(jitter(part, 3), "spot", 4)[0]
    assert turning_expert.score(spotted.rotate(100, resample=Image.BILINEAR, fillcolor=(40, 45, 50))).anomalous


def moved_part(part: Image.Image, seed: int, dx: int, dy: int) -> Image.Image:
    """The part photographed again, lying dx, dy pixels away from where it usually lies."""
    return jitter(part, seed).rotate(0, translate=(dx, dy), fillcolor=(40, 45, 50))


def test_auto_matching_chooses_free_when_the_part_lies_elsewhere_in_each_reference(part):
    references = [moved_part(part, 1, 0, 0), moved_part(part, 2, 60, -40), moved_part(part, 3, -50, 50)]
    expert = VisionExpert(matching="auto").fit(references)
    assert expert.fitted.matching == "free" and expert.fitted.chosen


def test_auto_matching_chooses_position_for_a_part_in_fixed_pose(part):
    expert = VisionExpert(matching="auto").fit([jitter(part, s) for s in range(3)])
    assert expert.fitted.matching == "position"


def shaded_depth(dent: bool) -> Image.Image:
    """A rendered height map of a wavy plate (Lambertian shading), with an optional dent."""
    yy, xx = np.mgrid[0:192, 0:192] / 192.0
    height = 0.05 * np.sin(xx * 12) + 0.03 * np.cos(yy * 9)
    if dent:
        height -= 0.08 * np.exp(-((xx - 0.3) ** 2 + (yy - 0.6) ** 2) / 0.002)
    gy, gx = np.gradient(height * 192 / 8)
    shade = (1 - gx + gy) / np.sqrt(1 + gx**2 + gy**2)
    return Image.fromarray(np.clip(shade * 160, 0, 255).astype(np.uint8), mode="L")


def test_dent_in_a_shaded_depth_render_is_found():
    expert = VisionExpert().fit([shaded_depth(False)])
    report = expert.score(shaded_depth(True))
    x0, y0, x1, y1 = report.regions[0].box
    assert report.anomalous and x0 <= 0.3 <= x1 and y0 <= 0.6 <= y1


def test_float_depth_map_is_accepted():
    depth = Image.fromarray(np.linspace(0, 3, 128 * 96, dtype=np.float32).reshape(96, 128), mode="F")
    report = VisionExpert().fit([depth]).score(depth)
    assert report.heatmap.shape == (96, 128) and not report.anomalous


def test_coreset_keeps_one_patch_of_each_distant_group():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0] * 8, [10.0] * 8, [-10.0] * 8])
    patches = np.concatenate([c + rng.normal(0, 0.1, (50, 8)) for c in centres]).astype(np.float32)
    chosen = coreset(patches, 3)
    assert sorted(int(i) // 50 for i in chosen) == [0, 1, 2]


def test_turned_references_are_thinned_to_a_coreset_for_free_matching(part):
    expert = VisionExpert(matching="free", rotation_invariant=True).fit([jitter(part, 1), jitter(part, 2)])
    counts = np.bincount(expert.fitted.bank.owners)
    assert counts.max() <= TURNED_PATCHES and expert.fitted.bank.grids.shape[0] == 2 * len(ROTATION_ANGLES)
