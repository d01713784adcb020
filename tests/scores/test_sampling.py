"""Balanced sampling weights and draws."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gohscore.scores.sampling import balanced_weights, draw_indices, sampling_weights


def test_weights_inverse_to_counts():
    tot = np.array([0] * 6 + [10] * 3 + [50])
    w = balanced_weights(tot)
    assert w.sum() == pytest.approx(1.0)
    assert w[0] * 6 == pytest.approx(w[6] * 3) == pytest.approx(w[9])
    assert np.allclose(sampling_weights(tot, balanced=False), 0.1)


def test_drawn_histogram_is_flat():
    rng = np.random.default_rng(1)
    tot = rng.choice([0, 5, 10, 30, 70], p=[0.8, 0.1, 0.06, 0.03, 0.01], size=500)
    w = torch.as_tensor(balanced_weights(tot), dtype=torch.float32)
    gen = torch.Generator().manual_seed(0)
    idx = draw_indices(w, 50_000, gen).numpy()
    _, counts = np.unique(tot[idx], return_counts=True)
    assert len(counts) == 5
    assert counts.min() / counts.max() > 0.9
    again = draw_indices(w, 10, torch.Generator().manual_seed(3))
    assert torch.equal(again, draw_indices(w, 10, torch.Generator().manual_seed(3)))
