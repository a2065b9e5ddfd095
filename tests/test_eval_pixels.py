"""Pixel AUROC from per-item heatmap histograms (assistant/evaluation/pixels.py)."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from assistant.evaluation.pixels import BINS, fit_mask, histograms, pixel_auroc


def test_pixel_auroc_from_histograms_matches_the_direct_computation():
    rng = np.random.default_rng(0)
    heat = [rng.uniform(0, 0.6, (20, 30)), rng.uniform(0, 0.6, (20, 30))]
    mask = np.zeros((20, 30), bool)
    mask[5:10, 5:12] = True
    heat[1][mask] += 0.35  # defect pixels run hotter
    rows = [{"pixels": histograms(heat[0], None)}, {"pixels": histograms(heat[1], mask)}]
    truth = np.concatenate([np.zeros(600, bool), mask.ravel()])
    direct = roc_auc_score(truth, np.concatenate([heat[0].ravel(), heat[1].ravel()]))
    assert pixel_auroc(rows) == pytest.approx(direct, abs=0.01)


def test_no_defect_pixels_means_no_pixel_auroc():
    assert pixel_auroc([{"pixels": histograms(np.full((4, 4), 0.2), None)}]) is None
    assert pixel_auroc([{"pixels": None}, {}]) is None


def test_histograms_count_every_pixel_once():
    counts = histograms(np.linspace(0, 1, 64).reshape(8, 8), np.eye(8, dtype=bool))
    assert len(counts["defect"]) == BINS and sum(counts["defect"]) == 8 and sum(counts["normal"]) == 56


def test_a_mask_of_another_size_is_brought_to_the_heatmap():
    mask = np.zeros((4, 4), bool)
    mask[:2, :2] = True
    fitted = fit_mask(mask, (8, 8))
    assert fitted.shape == (8, 8) and fitted[:4, :4].all() and not fitted[4:, :].any()
