"""Score inference: per level, the mean network output over the level's slices and the ensemble's
models, rounded half up to 5 and clipped to [0, 100]."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from gohscore.errors import GohscoreError
from gohscore.inference import for_inference, per_pass
from gohscore.scores.data import normalize_hu
from gohscore.scores.rounding import SCORES, round_score
from gohscore.scores.slices import resize_square

log = logging.getLogger("gohscore")

CARD_KEYS = ("input_size", "hu_window", "slices_per_level", "output_scale")


def common_card(cards: Sequence[dict]) -> dict:
    """The input/output settings shared by an ensemble's model cards (error if they disagree)."""
    if not cards:
        raise GohscoreError("no score model given; pass at least one model.pt")
    first = {k: cards[0].get(k) for k in CARD_KEYS}
    for i, card in enumerate(cards[1:], start=2):
        other = {k: card.get(k) for k in CARD_KEYS}
        if other != first:
            raise GohscoreError(
                f"score model {i} has settings {other}, model 1 has {first}; ensemble models must match"
            )
    if cards[0].get("task") not in (None, "scores"):
        raise GohscoreError(f"model card task is {cards[0].get('task')!r}, not 'scores'; pass score models")
    return first


@torch.no_grad()
def predict_images(
    models: Sequence[nn.Module],
    images_hu: np.ndarray,
    card: dict,
    device: torch.device,
    batch_size: int | None = None,
) -> np.ndarray:
    """Raw (unrounded) TOT, GG, RET in % of ``(N, H, W)`` HU slices, averaged over ``models``.

    ``batch_size`` slices go through the network per pass (default: what suits the device).
    """
    size = int(card["input_size"])
    images = np.asarray(images_hu, dtype=np.float32)
    if images.shape[1:] != (size, size):
        images, _ = resize_square(images, (1.0, 1.0), size)
    x_all = torch.as_tensor(images)
    total = np.zeros((len(images), 3), dtype=np.float64)
    for model in models:
        model = for_inference(model, device)
        step = batch_size or per_pass(model, (size, size), device)
        outs = []
        for start in range(0, len(images), step):
            x = normalize_hu(x_all[start : start + step].to(device), card["hu_window"])[:, None]
            outs.append(model(x).float().cpu().numpy())
        total += np.concatenate(outs) if outs else np.zeros((0, 3))
    return total / len(models) * float(card.get("output_scale", 100.0))


def predict_scores_slices(
    models: Sequence[nn.Module], slices: np.ndarray, card: dict, device: torch.device
) -> np.ndarray:
    """Scores ``(n_levels, 3)`` [TOT, GG, RET] of ``(n_levels * s, H, W)`` HU slices, ``s`` per level in order."""
    s = int(card.get("slices_per_level", 3))
    if len(slices) == 0 or len(slices) % s:
        raise ValueError(f"{len(slices)} slices is not a multiple of slices_per_level {s}")
    raw = predict_images(models, slices, card, device)
    return round_score(raw.reshape(-1, s, 3).mean(axis=1))


def predict_table(
    models: Sequence[nn.Module], card: dict, images: np.ndarray, index: pd.DataFrame, device: torch.device
) -> pd.DataFrame:
    """One row per patient and level: ``patient, level, pred_TOT, pred_GG, pred_RET`` (rounded, clipped)."""
    raw = predict_images(models, images, card, device)
    frame = index[["patient", "level"]].reset_index(drop=True).copy()
    for j, s in enumerate(SCORES):
        frame[f"pred_{s}"] = raw[:, j]
    level = frame.groupby(["patient", "level"], sort=False).mean().reset_index()
    for s in SCORES:
        level[f"pred_{s}"] = round_score(level[f"pred_{s}"].to_numpy())
    return level
