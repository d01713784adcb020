"""What a score network is taught: the TOT histogram of the real slices, of the draws and of the syntheses.

Written by ``train-scores`` beside each model (``draws.parquet``) and gathered by ``gohscore tables``
into ``label_draws``, so that the effect of balancing and synthesis on the label distribution is a
table (and a figure drawn from it), not a claim.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from gohscore.goh import SCORE_STEP

BINS = np.arange(0, 101, SCORE_STEP, dtype=float)
SYNTHESES_SAMPLED = 512


def shares(tot: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Weighted share of each TOT bin 0, 5, ..., 100 (sums to 1; all zero for no values)."""
    tot = np.asarray(tot, dtype=float)
    w = np.ones(len(tot)) if weights is None else np.asarray(weights, dtype=float)
    counts = np.bincount(np.rint(tot / SCORE_STEP).astype(int), weights=w, minlength=len(BINS))
    total = counts.sum()
    return counts / total if total > 0 else counts


def draw_table(
    tot: np.ndarray, weights: np.ndarray, replaced: np.ndarray, synthetic_tot: np.ndarray
) -> pd.DataFrame:
    """Shares per TOT bin of the real slices, of the real draws that stay, of the syntheses and of both.

    ``weights`` are the draw probabilities of the slices; ``replaced`` the chance that a draw of each
    slice is replaced by a synthesis; ``synthetic_tot`` a sample of synthetic TOT scores.

    >>> t = draw_table(np.array([0, 0, 10, 20]), np.full(4, 0.25), np.array([0.5, 0.5, 0, 0]), np.array([30.0]))
    >>> t.loc[t["score"].isin([0, 10, 30]), ["score", "real", "drawn", "synthetic", "seen"]].values.tolist()
    [[0.0, 0.5, 0.25, 0.0, 0.25], [10.0, 0.25, 0.25, 0.0, 0.25], [30.0, 0.0, 0.0, 0.25, 0.25]]
    """
    w = np.asarray(weights, dtype=float) / np.sum(weights)
    stay = w * (1.0 - np.asarray(replaced, dtype=float))
    drawn = shares(tot, stay) * stay.sum()
    synthetic = shares(synthetic_tot) * (1.0 - stay.sum()) if len(synthetic_tot) else np.zeros(len(BINS))
    return pd.DataFrame(
        {
            "score": BINS,
            "real": shares(tot),
            "drawn": drawn,
            "synthetic": synthetic,
            "seen": drawn + synthetic,
        }
    )


def sample_synthetic_tot(make: callable, n: int = SYNTHESES_SAMPLED, batch: int = 16) -> np.ndarray:
    """TOT of ``n`` syntheses made by ``make(k)`` (which returns ``(k, 3)`` score tensors), in batches."""
    out = []
    for start in range(0, n, batch):
        with torch.no_grad():
            out.append(make(min(batch, n - start))[:, 0].cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)
