"""How well the score ensemble's heat maps agree with the true lesion masks, per pattern.

Everything is measured on the networks' input grid, at the reference levels' centre slices of
the test patients, for the levels whose true mask of the pattern holds at least
:data:`MIN_MASK_PIXELS` pixels there. Three maps are compared:

- ``gradcam``: the ensemble's Grad-CAM map as :mod:`gohscore.scores.explain` gives it;
- ``gradcam_in_lung``: the same map times the slice's own lung mask, estimated from its HU
  (:func:`gohscore.scores.lungmask.lung_mask`): what a user without masks can compute;
- ``lung_mask``: the true lung mask as a flat map, the trivial reference: a map that knows
  where the lung is and nothing about the lesions.

Per map and level:

- **energy in mask**: the share of the map's total heat that lies inside the true mask;
- **pointing game**: whether the map's hottest pixel lies inside the mask (for the flat lung
  map, the chance that a random lung pixel does, i.e. the mask's share of the lung);
- **pixel AUC**: the ROC AUC of the map's values for telling mask pixels from the other lung
  pixels (0.5 for the flat map).

A score can also be read off a map: the share of the estimated lung where the in-lung map is
at least :data:`MAP_SCORE_THRESHOLD` of its maximum, in %. It is compared with the reference
score of every test level (mean absolute error and Spearman correlation).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gohscore.goh import PATTERNS

MIN_MASK_PIXELS = 5
MAP_SCORE_THRESHOLD = 0.5
METHODS = ("gradcam", "gradcam_in_lung", "lung_mask")
METRIC_COLUMNS = ("energy_in_mask", "pointing_game", "pixel_auc")


def energy_in_mask(heat: np.ndarray, mask: np.ndarray) -> float:
    """Share of ``heat``'s sum inside ``mask``; NaN for a map with no heat.

    >>> energy_in_mask(np.array([[1.0, 3.0]]), np.array([[False, True]]))
    0.75
    """
    total = float(np.sum(heat))
    return float(np.sum(heat[mask]) / total) if total > 0 else float("nan")


def pointing_game(heat: np.ndarray, mask: np.ndarray) -> float:
    """1.0 if the hottest pixel lies in ``mask``, else 0.0; NaN for a map with no heat."""
    if float(np.max(heat)) <= 0:
        return float("nan")
    return float(mask.flat[int(np.argmax(heat))])


def pixel_auc(heat: np.ndarray, mask: np.ndarray, lung: np.ndarray) -> float:
    """ROC AUC of ``heat`` for mask pixels against the other pixels of ``lung | mask``.

    Ties count one half (the Mann-Whitney form), so a flat map scores 0.5.

    >>> pixel_auc(np.array([[0.9, 0.1, 0.5]]), np.array([[True, False, False]]), np.ones((1, 3), bool))
    1.0
    """
    from scipy.stats import rankdata

    region = lung | mask
    values, positive = heat[region], mask[region]
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(values)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def map_score(heat_in_lung: np.ndarray, lung: np.ndarray, threshold: float = MAP_SCORE_THRESHOLD) -> float:
    """Percent of ``lung`` where the map reaches ``threshold`` of its maximum (0 for a map with no heat)."""
    area = int(lung.sum())
    peak = float(np.max(heat_in_lung)) if heat_in_lung.size else 0.0
    if area == 0 or peak <= 0:
        return 0.0
    return 100.0 * float(np.count_nonzero((heat_in_lung >= threshold * peak) & lung)) / area


def level_rows(
    patient: str,
    level: int,
    maps: np.ndarray,
    masks: dict[str, np.ndarray],
    true_lung: np.ndarray,
    estimated_lung: np.ndarray,
) -> list[dict]:
    """Metric rows of one level's centre slice: ``maps`` is ``(3, H, W)`` (TOT, GG, RET)."""
    rows = []
    for j, pattern in enumerate(PATTERNS):
        mask = masks[pattern]
        in_lung = maps[j] * estimated_lung
        base = {"patient": patient, "level": level, "pattern": pattern, "mask_pixels": int(mask.sum())}
        score = {"map_score": map_score(in_lung, estimated_lung)}
        if mask.sum() < MIN_MASK_PIXELS:
            rows.append(
                {**base, "method": "gradcam_in_lung", **score, **dict.fromkeys(METRIC_COLUMNS, np.nan)}
            )
            continue
        share = float(mask[true_lung].sum()) / max(int(true_lung.sum()), 1)
        for method, heat in (("gradcam", maps[j]), ("gradcam_in_lung", in_lung)):
            rows.append(
                {
                    **base,
                    "method": method,
                    **(score if method == "gradcam_in_lung" else {"map_score": np.nan}),
                    "energy_in_mask": energy_in_mask(heat, mask),
                    "pointing_game": pointing_game(heat, mask),
                    "pixel_auc": pixel_auc(heat, mask, true_lung),
                }
            )
        flat = true_lung.astype(np.float64)
        rows.append(
            {
                **base,
                "method": "lung_mask",
                "map_score": np.nan,
                "energy_in_mask": energy_in_mask(flat, mask),
                "pointing_game": share,
                "pixel_auc": pixel_auc(flat, mask, true_lung),
            }
        )
    return rows


def summary_table(metrics: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """One row per pattern and method: levels with a mask, mean metrics, and (in-lung map) the map score.

    ``reference`` has ``patient, level`` and the reference ``ref_TOT, ref_GG, ref_RET``.
    """
    from scipy.stats import spearmanr

    rows = []
    for pattern in PATTERNS:
        for method in METHODS:
            sel = metrics[(metrics["pattern"] == pattern) & (metrics["method"] == method)]
            scored = sel.dropna(subset=["energy_in_mask"])
            row = {"pattern": pattern, "method": method, "n_levels": len(scored)}
            row.update({c: float(scored[c].mean()) if len(scored) else np.nan for c in METRIC_COLUMNS})
            row["map_score_mae"] = row["map_score_spearman"] = np.nan
            if method == "gradcam_in_lung" and len(sel):
                joined = sel.merge(reference, on=["patient", "level"], how="inner")
                ref = joined[f"ref_{pattern}"].to_numpy(float)
                got = joined["map_score"].to_numpy(float)
                row["map_score_mae"] = float(np.mean(np.abs(got - ref))) if len(ref) else np.nan
                if len(ref) > 2 and np.std(ref) > 0 and np.std(got) > 0:
                    row["map_score_spearman"] = float(spearmanr(got, ref).statistic)
            rows.append(row)
    return pd.DataFrame(rows)
