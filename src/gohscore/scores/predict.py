"""Score inference: per level, the mean network output over the level's slices and the ensemble's
models, rounded half up to 5 and clipped to [0, 100]."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from gohscore.cards import ModelCard
from gohscore.goh import PATTERNS, round_to_5
from gohscore.inference import for_inference, per_pass
from gohscore.scores.data import normalize_hu
from gohscore.scores.slices import resize_square

log = logging.getLogger("gohscore")


@torch.no_grad()
def predict_members(
    models: Sequence[nn.Module],
    images_hu: np.ndarray,
    card: ModelCard,
    device: torch.device,
    batch_size: int | None = None,
) -> np.ndarray:
    """Raw (unrounded) TOT, GG, RET in % of ``(N, H, W)`` HU slices, per model: ``(models, N, 3)``.

    ``batch_size`` slices go through the network per pass (default: what suits the device).
    """
    size, hu_window = int(card.input["input_size"]), card.input["hu_window"]
    images = np.asarray(images_hu, dtype=np.float32)
    if images.shape[1:] != (size, size):
        images, _ = resize_square(images, (1.0, 1.0), size)
    x_all = torch.as_tensor(images)
    members = np.zeros((len(models), len(images), 3), dtype=np.float64)
    for m, model in enumerate(models):
        model = for_inference(model, device)
        step = batch_size or per_pass(model, (size, size), device)
        for start in range(0, len(images), step):
            x = normalize_hu(x_all[start : start + step].to(device), hu_window)[:, None]
            members[m, start : start + len(x)] = model(x).float().cpu().numpy()
    return members * float(card.output["scale"])


def predict_images(
    models: Sequence[nn.Module],
    images_hu: np.ndarray,
    card: ModelCard,
    device: torch.device,
    batch_size: int | None = None,
) -> np.ndarray:
    """Raw (unrounded) TOT, GG, RET in % of ``(N, H, W)`` HU slices, averaged over ``models``."""
    return predict_members(models, images_hu, card, device, batch_size).mean(axis=0)


def level_members(
    models: Sequence[nn.Module], slices: np.ndarray, card: ModelCard, device: torch.device
) -> np.ndarray:
    """Each model's unrounded level scores ``(models, n_levels, 3)``: the mean over each level's slices.

    ``slices`` is ``(n_levels * s, H, W)`` HU, ``s = slices_per_level`` per level in order.
    """
    s = int(card.input["slices_per_level"])
    if len(slices) == 0 or len(slices) % s:
        raise ValueError(f"{len(slices)} slices is not a multiple of slices_per_level {s}")
    raw = predict_members(models, slices, card, device)
    return raw.reshape(len(models), -1, s, 3).mean(axis=2)


def predict_scores_slices(
    models: Sequence[nn.Module], slices: np.ndarray, card: ModelCard, device: torch.device
) -> np.ndarray:
    """Scores ``(n_levels, 3)`` [TOT, GG, RET] of ``(n_levels * s, H, W)`` HU slices, ``s`` per level in order."""
    return round_to_5(level_members(models, slices, card, device).mean(axis=0))


def predict_table(
    models: Sequence[nn.Module],
    card: ModelCard,
    images: np.ndarray,
    index: pd.DataFrame,
    device: torch.device,
) -> pd.DataFrame:
    """One row per patient and level: ``patient, level, pred_TOT, pred_GG, pred_RET`` (rounded, clipped)."""
    raw = predict_images(models, images, card, device)
    frame = index[["patient", "level"]].reset_index(drop=True).copy()
    for j, s in enumerate(PATTERNS):
        frame[f"pred_{s}"] = raw[:, j]
    level = frame.groupby(["patient", "level"], sort=False).mean().reset_index()
    for s in PATTERNS:
        level[f"pred_{s}"] = round_to_5(level[f"pred_{s}"].to_numpy())
    return level
