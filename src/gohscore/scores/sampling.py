"""Which training slices a batch draws: uniform, or balanced over the TOT score (paper, 'balanced sampling')."""

from __future__ import annotations

import numpy as np
import torch


def balanced_weights(tot: np.ndarray, power: float = 1.0, keep_healthy_share: bool = False) -> np.ndarray:
    """Per-slice weight ``count(TOT value) ** -power``, normalised to sum 1.

    ``power`` 1 is the paper's balancing (every TOT value drawn equally often), 0 is uniform.
    With ``keep_healthy_share`` the healthy slices (TOT 0) keep their natural share of the draws
    and only the diseased values are balanced among themselves, so that balancing does not teach
    the network that healthy levels are rarer than they are.

    >>> balanced_weights(np.array([0, 0, 0, 10])).round(3).tolist()
    [0.167, 0.167, 0.167, 0.5]
    >>> balanced_weights(np.array([0, 0, 10, 10, 10, 20]), keep_healthy_share=True).round(3).tolist()
    [0.167, 0.167, 0.111, 0.111, 0.111, 0.333]
    """
    tot = np.asarray(tot)
    if tot.size == 0:
        raise ValueError("no training slices to sample from")
    if not 0.0 <= power <= 1.0:
        raise ValueError(f"balance power must be in [0, 1], got {power}")
    _, inverse, counts = np.unique(tot, return_inverse=True, return_counts=True)
    w = counts[inverse].astype(np.float64) ** -power
    healthy = tot == 0
    if keep_healthy_share and healthy.any() and not healthy.all():
        share = healthy.mean()
        w = np.where(healthy, share / healthy.sum(), (1 - share) * w / w[~healthy].sum())
    return w / w.sum()


def uniform_weights(n: int) -> np.ndarray:
    """Equal weights for ``n`` slices (the 'none' ablation)."""
    if n < 1:
        raise ValueError("no training slices to sample from")
    return np.full(n, 1.0 / n)


def sampling_weights(
    tot: np.ndarray, balanced: bool, power: float = 1.0, keep_healthy_share: bool = False
) -> np.ndarray:
    """Balanced (see :func:`balanced_weights`) or uniform weights for slices with scores ``tot``."""
    if not balanced:
        return uniform_weights(len(tot))
    return balanced_weights(tot, power, keep_healthy_share)


def draw_indices(weights: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """Draw ``n`` slice indices with replacement, with probability ∝ ``weights`` (on the weights' device)."""
    return torch.multinomial(weights, n, replacement=True, generator=generator)
