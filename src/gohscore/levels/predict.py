"""Level inference: sliding windows over z, median per level, ensemble of fold models, prediction table."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from gohscore.cards import ModelCard
from gohscore.errors import GohscoreError
from gohscore.goh import N_LEVELS
from gohscore.inference import for_inference, per_pass
from gohscore.levels.data import OutputScale, normalise, volume_stats
from gohscore.levels.decode import decode_windows, ensemble, window_starts
from gohscore.training import autocast, prepare_input

log = logging.getLogger("gohscore")

TABLE_COLUMNS = [
    "patient",
    "set",
    "fold",
    "level",
    "pred_index",
    "ref_index",
    "pred_z_mm",
    "ref_z_mm",
    "pred_slice",
    "ref_slice",
]


def window_indices(
    model: nn.Module,
    volume: torch.Tensor,
    starts: np.ndarray,
    crop_z: int,
    device: torch.device,
    amp: bool = True,
    chunk: int | None = None,
) -> np.ndarray:
    """Indices inside each window (``(windows, 5)``) for a normalised ``(S, S, S)`` volume on ``device``.

    ``chunk`` windows go through the network per pass (default: what suits the device).
    """
    scale = OutputScale.for_crop(crop_z)
    chunk = chunk or per_pass(model, (crop_z, *volume.shape[1:]), device)
    outs = []
    with torch.no_grad(), autocast(device, amp):
        for i in range(0, len(starts), chunk):
            batch = torch.stack([volume[s : s + crop_z] for s in starts[i : i + chunk]])[:, None]
            outs.append(scale.to_index(model(prepare_input(batch, device))))
    return torch.cat(outs).cpu().numpy().astype(np.float64)


def card_settings(card: ModelCard) -> tuple[tuple[float, float], int]:
    """HU window and crop height recorded in a level model card."""
    try:
        hu = card.input["hu_window"]
        return (float(hu[0]), float(hu[1])), int(card.input["crop_z"])
    except (KeyError, TypeError, IndexError) as err:
        raise GohscoreError(
            f"level model card lacks input {err}; retrain the model with train-levels"
        ) from err


def predict_levels_members(
    models: list[nn.Module],
    volume: np.ndarray | torch.Tensor,
    card: ModelCard,
    device: torch.device,
    window_stride: int,
    amp: bool = True,
) -> np.ndarray:
    """Each model's grid z indices of L1..L5 (float, ``(models, 5)``) in one int16 grid volume.

    ``window_stride`` (``levels.window_stride``) and ``amp`` (``machine.amp``) are inference
    choices, not part of the card.
    """
    hu_window, crop_z = card_settings(card)
    vol = torch.from_numpy(np.array(volume, copy=True)) if isinstance(volume, np.ndarray) else volume
    vol = vol.to(device, non_blocking=True)
    mean, std = volume_stats(vol, hu_window)
    vol = normalise(vol, mean, std, hu_window)
    starts = window_starts(int(vol.shape[0]), crop_z, window_stride)
    per_model = []
    for model in models:
        for_inference(model, device)
        per_model.append(decode_windows(window_indices(model, vol, starts, crop_z, device, amp), starts))
    return np.stack(per_model)


def predict_levels_volume(
    models: list[nn.Module],
    volume: np.ndarray | torch.Tensor,
    card: ModelCard,
    device: torch.device,
    window_stride: int,
    amp: bool = True,
) -> np.ndarray:
    """Grid z indices (float, ``(5,)``) of L1..L5 in one int16 grid volume; several models = median ensemble."""
    return ensemble(predict_levels_members(models, volume, card, device, window_stride, amp))


def level_table(
    patients: Sequence[str],
    pred_index: np.ndarray,
    ref_z_mm: np.ndarray | None,
    geoms: dict[str, dict],
    folds: pd.DataFrame,
) -> pd.DataFrame:
    """The long prediction table of docs/architecture.md (one row per patient and level).

    ``pred_index`` are grid indices ``(n, 5)``; ``ref_z_mm`` the labelled world z (NaN or ``None`` if unknown).
    """
    from gohscore import preprocess

    info = folds.assign(patient=folds["patient"].astype(str)).set_index("patient")
    rows = []
    for i, patient in enumerate(patients):
        geom = geoms[patient]
        for k in range(N_LEVELS):
            pi = float(pred_index[i, k])
            rz = float(ref_z_mm[i, k]) if ref_z_mm is not None else float("nan")
            ri = float(preprocess.world_z_to_grid_index(rz, geom)) if np.isfinite(rz) else float("nan")
            pz = float(preprocess.grid_index_to_world_z(pi, geom))
            rows.append(
                {
                    "patient": patient,
                    "set": str(info.loc[patient, "set"]),
                    "fold": int(info.loc[patient, "fold"]),
                    "level": k + 1,
                    "pred_index": pi,
                    "ref_index": ri,
                    "pred_z_mm": pz,
                    "ref_z_mm": rz,
                    "pred_slice": float(preprocess.world_z_to_original_slice(pz, geom)),
                    "ref_slice": float(preprocess.world_z_to_original_slice(rz, geom))
                    if np.isfinite(rz)
                    else float("nan"),
                }
            )
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    return table.astype({"patient": str, "set": str, "fold": "int64", "level": "int64"})
