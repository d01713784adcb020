"""The score ablations' wiring: draws follow the claimed weights; synthesis replaces exactly the draws its
mode allows; synthetic extents aim at the under-filled bins."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from gohscore.scores.sampling import balanced_weights, sampling_weights
from gohscore.scores.synthesis import apply_synthesis, draw_extents, draw_params, extent_targets, fit_extent
from gohscore.scores.textures import procedural_pool
from gohscore.scores.train import TARGET_SCALE, build_bank, make_sampler
from tests.scores.test_lungmask import synthetic_slice

CPU = torch.device("cpu")
WINDOW = [-1500.0, 1500.0]
NO_PATCHES = pd.DataFrame(columns=["file", "pattern", "patient"])


def test_partial_and_healthy_keeping_weights_by_hand():
    tot = np.array([0, 0, 0, 0, 10, 20])
    # counts 4, 1, 1; power 0.5: 4 ** -0.5 = 0.5 per healthy slice, 1 per other; total 4
    assert balanced_weights(tot, power=0.5).tolist() == pytest.approx([0.125] * 4 + [0.25, 0.25])
    # healthy share kept at 4/6; the two diseased values split the other 2/6 equally
    assert balanced_weights(tot, keep_healthy_share=True).tolist() == pytest.approx([1 / 6] * 6)
    assert balanced_weights(tot, power=0.0).tolist() == pytest.approx([1 / 6] * 6)
    assert sampling_weights(tot, balanced=False).tolist() == pytest.approx([1 / 6] * 6)
    with pytest.raises(ValueError):
        balanced_weights(tot, power=1.5)


def _labelled_images(values: list[float]) -> torch.Tensor:
    """One constant slice per row, its HU saying which row it is."""
    return torch.stack([torch.full((16, 16), v) for v in values])


def test_draws_follow_the_weights_they_claim():
    hu = [-900.0, -800.0, -700.0, -600.0, -500.0, -400.0]
    tot = np.array([0, 0, 0, 0, 10, 20], dtype=np.float32)
    weights = balanced_weights(tot)  # 1/12 per healthy slice, 1/3 for each diseased one
    targets = torch.as_tensor(np.stack([tot, tot, np.zeros(6)], axis=1))
    sample = make_sampler(
        _labelled_images(hu),
        targets,
        torch.ones(6),
        torch.as_tensor(weights, dtype=torch.float32),
        500,
        WINDOW,
        None,
    )
    gen = torch.Generator().manual_seed(0)
    counts = np.zeros(6)
    for _ in range(40):
        x, y = sample(gen)
        hu_back = x[:, 0, 0, 0].numpy() * 1500.0  # the window [-1500, 1500] maps onto [-1, 1]
        rows = np.rint((hu_back + 900.0) / 100.0).astype(int)
        counts += np.bincount(rows, minlength=6)
        assert np.allclose(y[:, 0].numpy() * TARGET_SCALE, tot[rows])  # labels travel with their slice
    share = counts / counts.sum()
    expected = np.array([1, 1, 1, 1, 4, 4]) / 12
    assert np.abs(share - expected).max() < 0.01  # 20,000 draws: 3 SD of a share is below 0.01


def _bank_and_images(probability: float, on: str):
    healthy = [synthetic_slice(32, s)[0] for s in range(2)]
    diseased = [synthetic_slice(32, s)[0] + 300.0 for s in (5, 6)]  # stand-ins, never synthesised on
    images = np.stack(healthy + diseased).astype(np.int16)
    targets = np.array([[0, 0, 0], [0, 0, 0], [30, 20, 10], [20, 20, 0]], dtype=np.float32)
    bank = build_bank(images, targets, ["T1"], NO_PATCHES, probability, 0, CPU, on=on)
    assert bank is not None and sorted(bank.rows.tolist()) == [0, 1]
    return torch.as_tensor(images), torch.as_tensor(targets), bank


def _replaced(x: torch.Tensor, images: torch.Tensor) -> np.ndarray:
    """Which output rows equal none of the stored slices (so were synthesised)."""
    hu = x[:, 0] * 1500.0
    same = (hu[:, None] - images[None].float()).abs().flatten(2).amax(2) < 0.5
    return ~same.any(1).numpy()


@pytest.mark.parametrize("on", ["healthy", "any"])
def test_synthesis_replaces_exactly_the_draws_its_mode_allows(on):
    torch.manual_seed(0)  # the coin flips use torch's global generator (checkpointed by the loop)
    images, targets, bank = _bank_and_images(1.0, on)
    gen = torch.Generator().manual_seed(1)
    only_diseased = torch.tensor([0.0, 0.0, 0.5, 0.5])
    x, y = make_sampler(images, targets, torch.ones(4), only_diseased, 64, WINDOW, bank)(gen)
    replaced = _replaced(x, images)
    if on == "healthy":
        assert not replaced.any()  # a diseased draw is never replaced
        assert set(map(tuple, (y * TARGET_SCALE).round().tolist())) <= {(30.0, 20.0, 10.0), (20.0, 20.0, 0.0)}
    else:
        assert replaced.all()
    only_healthy = torch.tensor([0.5, 0.5, 0.0, 0.0])
    x, y = make_sampler(images, targets, torch.ones(4), only_healthy, 64, WINDOW, bank)(gen)
    assert _replaced(x, images).all()  # probability 1: every healthy draw is synthesised


def test_synthesis_probability_is_the_share_of_allowed_draws_replaced():
    torch.manual_seed(0)
    images, targets, bank = _bank_and_images(0.5, "healthy")
    weights = torch.tensor([0.25, 0.25, 0.25, 0.25])
    sample = make_sampler(images, targets, torch.ones(4), weights, 100, WINDOW, bank)
    gen = torch.Generator().manual_seed(2)
    replaced = np.concatenate([_replaced(sample(gen)[0], images) for _ in range(8)])
    # half the draws are healthy and half of those are replaced: 1/4 of 800 draws, SD about 12
    assert abs(replaced.sum() - 200) < 40


def test_extent_targets_level_the_drawn_histogram():
    tot = np.array([0] * 10 + [5] * 6 + [10] * 3 + [20] * 1)  # 20 slices, drawn uniformly
    # healthy draws are half of all, half of those replaced: a synthetic share of 1/4 = 5/20.
    # Real draws per bin 5, 10, 15, 20 (of 20): 6, 3, 0, 1. Pouring 5 into the lowest bins: 15 and 20
    # rise to 3 (uses 3 + 2 = 5), so the targets are 0, 0, 3/5, 2/5 and bins 10-20 end level at 3.
    pmf = extent_targets(tot, np.ones(len(tot)), 0.5, on="healthy")
    assert pmf.tolist() == pytest.approx([0, 0, 0.6, 0.4])
    # with synthesis on any draw at probability 1 nothing real is left: uniform over the bins
    assert extent_targets(tot, np.ones(len(tot)), 1.0, on="any").tolist() == pytest.approx([0.25] * 4)
    # balanced real draws leave the empty bin (15) the lowest: a small synthetic share goes there alone
    weights = balanced_weights(tot, keep_healthy_share=True)
    pmf = extent_targets(tot, weights, 0.1, on="healthy")
    assert pmf.tolist() == pytest.approx([0, 0, 1, 0])


def test_fitted_extents_land_near_their_targets():
    """Two rectangular lungs of known area; 200 syntheses aimed at 5..40 % land within one bin."""
    lung = np.zeros((64, 64), bool)
    lung[10:54, 6:28] = True
    lung[10:54, 36:58] = True
    rng = np.random.default_rng(0)
    coords = np.argwhere(lung).astype(np.float32)
    n = 200
    samples = coords[rng.integers(0, len(coords), size=(n, 256))]
    params = draw_params(rng, samples, np.full(n, 52.0), (0, 4))
    lungs = torch.as_tensor(np.stack([lung] * n))
    target = draw_extents(rng, np.full(8, 1 / 8), n)
    assert 2.5 <= target.min() and target.max() <= 42.5
    fitted = fit_extent(params, lungs, target)
    pool = procedural_pool(0)
    res = apply_synthesis(torch.full((n, 64, 64), -850.0), lungs, fitted, pool, None, torch.ones(n))
    tot = res.scores[:, 0].numpy()
    area = lung.sum()
    union = (res.gg_mask | res.ret_mask).flatten(1).sum(1).numpy() * 100.0 / area
    assert np.abs(union - target).mean() < 2.0
    assert (np.abs(tot - target) <= 5.0).mean() > 0.9
    free = apply_synthesis(torch.full((n, 64, 64), -850.0), lungs, params, pool, None, torch.ones(n))
    assert float(free.scores[:, 0].mean()) > float(tot.mean()) + 10  # free extents run much larger
