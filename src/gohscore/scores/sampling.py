"""Which training slices a batch draws: uniform, or balanced over the TOT score (paper, 'balanced sampling')."""

from __future__ import annotations

import numpy as np
import torch

ABLATIONS: dict[str, tuple[bool, bool]] = {
    # name -> (balanced sampling, synthesis)
    "none": (False, False),
    "balanced": (True, False),
    "balanced_synthesis": (True, True),
}


def balanced_weights(tot: np.ndarray) -> np.ndarray:
    """Per-slice weight ``1 / count(TOT value)``, normalised to sum 1: every TOT value is drawn equally often.

    >>> balanced_weights(np.array([0, 0, 0, 10])).round(3).tolist()
    [0.167, 0.167, 0.167, 0.5]
    """
    tot = np.asarray(tot)
    if tot.size == 0:
        raise ValueError("no training slices to sample from")
    _, inverse, counts = np.unique(tot, return_inverse=True, return_counts=True)
    w = 1.0 / counts[inverse].astype(np.float64)
    return w / w.sum()


def uniform_weights(n: int) -> np.ndarray:
    """Equal weights for ``n`` slices (the 'none' ablation)."""
    if n < 1:
        raise ValueError("no training slices to sample from")
    return np.full(n, 1.0 / n)


def sampling_weights(tot: np.ndarray, balanced: bool) -> np.ndarray:
    """Balanced or uniform weights for slices with scores ``tot``."""
    return balanced_weights(tot) if balanced else uniform_weights(len(tot))


def draw_indices(weights: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """Draw ``n`` slice indices with replacement, with probability ∝ ``weights`` (on the weights' device)."""
    return torch.multinomial(weights, n, replacement=True, generator=generator)
