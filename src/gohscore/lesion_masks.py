"""Lesion masks at the five reference levels: ``masks/<patient>.npz`` beside a cohort's labels.

The embedded cohort writes one file per patient; a user's own cohort may have none (every use
of the masks is optional). One file holds, for the levels L1..L5 in order:

- ``lung``, ``GG``, ``RET``: boolean ``(5, rows, columns)`` masks on the level's axial slice of
  the scan, in the scan's LPS-oriented pixel grid (row = y, column = x), the same grid as
  :func:`gohscore.io.lps_array`;
- ``slice_index``: ``(5,)`` the slice (from the bottom, 0-based) the masks lie on;
- ``spacing_yx_mm``: ``(2,)`` the pixel spacing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gohscore.cohort import MASK_DIR
from gohscore.errors import GohscoreError
from gohscore.files import atomic_path
from gohscore.goh import N_LEVELS

MASK_KEYS = ("lung", "GG", "RET")


@dataclass(frozen=True)
class LevelMasks:
    """One patient's masks at its five reference levels (see the module docstring)."""

    lung: np.ndarray
    gg: np.ndarray
    ret: np.ndarray
    slice_index: np.ndarray
    spacing_yx_mm: tuple[float, float]

    def pattern(self, name: str) -> np.ndarray:
        """The mask of TOT (GG or RET), GG or RET, ``(5, rows, columns)``."""
        if name == "TOT":
            return self.gg | self.ret
        return {"GG": self.gg, "RET": self.ret}[name]


def mask_path(cohort: Path, patient: str) -> Path:
    """Where a cohort keeps one patient's masks."""
    return Path(cohort) / MASK_DIR / f"{patient}.npz"


def write_masks(masks: LevelMasks, path: Path) -> None:
    """Write ``masks`` as a compressed ``.npz`` (atomically)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(
            handle,
            lung=masks.lung.astype(bool),
            GG=masks.gg.astype(bool),
            RET=masks.ret.astype(bool),
            slice_index=np.asarray(masks.slice_index, dtype=np.int64),
            spacing_yx_mm=np.asarray(masks.spacing_yx_mm, dtype=np.float64),
        )


def read_masks(path: Path) -> LevelMasks:
    """Read a masks file; a GohscoreError names the file and what is wrong with it."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in (*MASK_KEYS, "slice_index", "spacing_yx_mm")}
    except FileNotFoundError:
        raise GohscoreError(f"{path}: lesion masks not found") from None
    except (KeyError, ValueError, OSError) as err:
        raise GohscoreError(
            f"{path}: not a lesion-mask file ({err}); it needs arrays lung, GG, RET, slice_index "
            "and spacing_yx_mm (see gohscore.lesion_masks)"
        ) from None
    shapes = {arrays[k].shape for k in MASK_KEYS}
    if len(shapes) != 1 or next(iter(shapes))[0] != N_LEVELS or len(next(iter(shapes))) != 3:
        raise GohscoreError(f"{path}: lung, GG and RET must all be ({N_LEVELS}, rows, columns); got {shapes}")
    return LevelMasks(
        arrays["lung"].astype(bool),
        arrays["GG"].astype(bool),
        arrays["RET"].astype(bool),
        arrays["slice_index"].astype(np.int64),
        (float(arrays["spacing_yx_mm"][0]), float(arrays["spacing_yx_mm"][1])),
    )
