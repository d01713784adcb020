"""Score-network data: the extracted slices of chosen patients, their level labels, fold patients, HU scaling."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from gohscore.errors import GohscoreError
from gohscore.goh import PATTERNS, score_column

INDEX = "index.parquet"
INDEX_COLUMNS = ["patient", "level", "offset", "row", "slice_index", "z_mm", "pixel_spacing_mm"]


def read_index(slices_dir: Path) -> pd.DataFrame:
    """The slices index of an ``extract-slices`` folder (patient as string)."""
    path = Path(slices_dir) / INDEX
    if not path.is_file():
        raise GohscoreError(f"{path}: slices index not found; run 'gohscore extract-slices' first")
    index = pd.read_parquet(path)
    missing = [c for c in INDEX_COLUMNS if c not in index.columns]
    if missing:
        raise GohscoreError(f"{path}: columns {missing} missing; re-run 'gohscore extract-slices'")
    index["patient"] = index["patient"].astype(str)
    return index


def load_slices(slices_dir: Path, patients: Sequence[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """Stack the slices of ``patients`` (in that order): int16 ``(N, H, W)`` and their index rows.

    The returned index has a column ``image``: the row in the returned stack.
    """
    slices_dir = Path(slices_dir)
    index = read_index(slices_dir)
    arrays, parts = [], []
    start = 0
    for patient in patients:
        rows = index[index["patient"] == str(patient)].sort_values("row")
        path = slices_dir / f"{patient}.npy"
        if rows.empty or not path.is_file():
            raise GohscoreError(
                f"{slices_dir}: no slices of patient {patient!r}; re-run 'gohscore extract-slices' "
                "with this patient in the manifest and level table"
            )
        arr = np.load(path)
        if arr.ndim != 3 or rows["row"].max() >= arr.shape[0]:
            raise GohscoreError(
                f"{path}: shape {arr.shape} does not match {INDEX}; re-run 'gohscore extract-slices'"
            )
        arrays.append(arr[rows["row"].to_numpy()])
        rows = rows.assign(image=np.arange(start, start + len(rows)))
        start += len(rows)
        parts.append(rows)
    if not arrays:
        raise GohscoreError(f"{slices_dir}: no patients selected; check the folds table")
    shapes = {a.shape[1:] for a in arrays}
    if len(shapes) > 1:
        raise GohscoreError(
            f"{slices_dir}: slices of different sizes {sorted(shapes)}; re-run 'gohscore extract-slices'"
        )
    return np.concatenate(arrays).astype(np.int16, copy=False), pd.concat(parts, ignore_index=True)


def slice_score_targets(index: pd.DataFrame, labels: pd.DataFrame) -> np.ndarray:
    """``(N, 3)`` float32 TOT, GG, RET (%) of each slice index row: its level's scores in the wide labels table."""
    labels = labels.assign(patient=labels["patient"].astype(str)).set_index("patient")
    out = np.empty((len(index), len(PATTERNS)), dtype=np.float32)
    for i, (patient, level) in enumerate(zip(index["patient"], index["level"], strict=True)):
        if patient not in labels.index:
            raise GohscoreError(f"labels table: no row for patient {patient!r}; add it or drop the patient")
        for j, s in enumerate(PATTERNS):
            column = score_column(int(level), s)
            value = labels.at[patient, column]
            if not np.isfinite(value):
                raise GohscoreError(f"labels table: patient {patient!r} has no {column}; fill it in")
            out[i, j] = value
    return out


def fold_patients(
    folds: pd.DataFrame, fold: int | None, set_name: str = "cv", exclude: bool = False
) -> list[str]:
    """Patients of ``set_name``; with ``fold``: in that fold, or (``exclude``) in every other fold. Sorted."""
    rows = folds[folds["set"].astype(str) == set_name]
    if fold is not None:
        rows = rows[(rows["fold"] != fold) if exclude else (rows["fold"] == fold)]
    return sorted(rows["patient"].astype(str))


def normalize_hu(x: torch.Tensor, hu_window: Sequence[float]) -> torch.Tensor:
    """Clip HU to ``hu_window`` and map it linearly onto [-1, 1] (the network's input scaling)."""
    lo, hi = float(hu_window[0]), float(hu_window[1])
    return (x.float().clamp(lo, hi) - (lo + hi) / 2) / ((hi - lo) / 2)
