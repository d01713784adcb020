"""Level-network data: grid volumes resident on the device, HU window + z-score, crops holding all five levels.

Volumes stay int16 on the device (227 x 32 MiB for the paper's cohort); every batch is cut,
normalised and augmented there, so the host never feeds the GPU during training.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from gohscore.errors import GohscoreError
from gohscore.goh import N_LEVELS, Z_COLUMNS

log = logging.getLogger("gohscore")


def manifest_geometries(manifest: pd.DataFrame, patients: Sequence[str], source: str) -> dict[str, dict]:
    """Geometry dicts of ``patients`` from the manifest table; every one must be present."""
    from gohscore.ingest import manifest_geometries as from_manifest

    rows = from_manifest(manifest) if "patient" in manifest.columns else {}
    need = {"patient", "grid_origin_xyz_mm", "grid_spacing_mm", "grid_shape"}
    missing = need - set(next(iter(rows.values()), {}))
    if missing:
        raise GohscoreError(f"{source}: manifest lacks columns {sorted(missing)}; rerun 'gohscore ingest'")
    absent = [p for p in patients if p not in rows]
    if absent:
        raise GohscoreError(f"{source}: no manifest row for patients {absent[:5]}; rerun 'gohscore ingest'")
    return {p: rows[p] for p in patients}


def grid_of(geoms: dict[str, dict], source: str) -> tuple[int, float]:
    """The common grid (cube side, spacing in mm) of a set of geometries; they must all agree."""
    shapes = {int(g["grid_shape"]) for g in geoms.values()}
    spacings = {round(float(g["grid_spacing_mm"]), 6) for g in geoms.values()}
    if len(shapes) != 1 or len(spacings) != 1:
        raise GohscoreError(
            f"{source}: patients were resampled to different grids (shapes {sorted(shapes)}, spacings "
            f"{sorted(spacings)}); rerun 'gohscore resample' with one preprocess config"
        )
    return shapes.pop(), spacings.pop()


def level_index_targets(labels: pd.DataFrame, geoms: dict[str, dict], source: str) -> np.ndarray:
    """Grid z indices (float, ``(n, 5)``) of the labelled levels of each patient in ``geoms``."""
    from gohscore import preprocess

    missing = {*Z_COLUMNS, "patient"} - set(labels.columns)
    if missing:
        raise GohscoreError(f"{source}: labels lack columns {sorted(missing)}; rerun 'gohscore ingest'")
    table = labels.assign(patient=labels["patient"].astype(str)).set_index("patient")
    out = np.empty((len(geoms), N_LEVELS), dtype=np.float64)
    for i, (patient, geom) in enumerate(geoms.items()):
        if patient not in table.index:
            raise GohscoreError(f"{source}: no label row for patient {patient}; fix the labels table")
        z_mm = table.loc[patient, list(Z_COLUMNS)].to_numpy(dtype=float)
        if not np.isfinite(z_mm).all():
            raise GohscoreError(f"{source}: patient {patient} has missing level positions; fill L1..L5_z_mm")
        out[i] = [float(preprocess.world_z_to_grid_index(float(z), geom)) for z in z_mm]
    return out


def load_volume(path: Path, shape: int) -> np.ndarray:
    """One preprocessed grid volume (int16, ``shape`` cube, zyx, index 0 = bottom)."""
    if not path.is_file():
        raise GohscoreError(f"{path}: grid volume missing; run 'gohscore resample' for this patient")
    vol = np.load(path, mmap_mode="r")
    if vol.dtype != np.int16 or vol.shape != (shape, shape, shape):
        raise GohscoreError(
            f"{path}: expected an int16 {shape}^3 volume, found {vol.dtype} {vol.shape}; rerun 'gohscore resample'"
        )
    return vol


def volume_stats(volume: torch.Tensor, hu_window: Sequence[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation of one volume after clipping to ``hu_window`` (float32 scalars)."""
    clipped = volume.float().clamp_(float(hu_window[0]), float(hu_window[1]))
    mean = clipped.mean()
    std = clipped.std().clamp_min(1.0)  # a flat phantom volume must not divide by zero
    return mean, std


def normalise(
    hu: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, hu_window: Sequence[float]
) -> torch.Tensor:
    """Clip HU to ``hu_window`` and z-score with the volume's statistics (broadcast over leading axes)."""
    return (hu.float().clamp(float(hu_window[0]), float(hu_window[1])) - mean) / std


@dataclass
class OutputScale:
    """Network outputs are ``(index_in_crop - offset) / scale``, which keeps the regression well conditioned."""

    offset: float
    scale: float

    @classmethod
    def for_crop(cls, crop_z: int) -> OutputScale:
        """Centre and half-height of a crop of ``crop_z`` slices."""
        return cls(offset=(crop_z - 1) / 2.0, scale=crop_z / 2.0)

    def to_index(self, out: torch.Tensor) -> torch.Tensor:
        """Network output -> slice index inside the crop."""
        return out.float() * self.scale + self.offset

    def to_output(self, index: torch.Tensor) -> torch.Tensor:
        """Slice index inside the crop -> network output."""
        return (index - self.offset) / self.scale


@dataclass
class ResidentVolumes:
    """Grid volumes on the device (int16, ``(n, S, S, S)``) with per-volume z-score statistics and targets."""

    volumes: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    targets: torch.Tensor | None
    patients: list[str]
    hu_window: tuple[float, float]

    @classmethod
    def from_arrays(
        cls,
        arrays: Sequence[np.ndarray | torch.Tensor],
        patients: Sequence[str],
        hu_window: Sequence[float],
        device: torch.device,
        targets: np.ndarray | None = None,
    ) -> ResidentVolumes:
        """Upload int16 cubes one at a time into one device tensor and compute their statistics there."""
        if not arrays:
            raise GohscoreError("no volumes to load; check the folds table and the --fold option")
        shape = tuple(arrays[0].shape)
        vols = torch.empty((len(arrays), *shape), dtype=torch.int16, device=device)
        means = torch.empty(len(arrays), device=device)
        stds = torch.empty(len(arrays), device=device)
        for i, arr in enumerate(arrays):
            t = torch.from_numpy(np.array(arr, copy=True)) if isinstance(arr, np.ndarray) else arr
            vols[i].copy_(t, non_blocking=False)
            means[i], stds[i] = volume_stats(vols[i], hu_window)
        tgt = None if targets is None else torch.as_tensor(targets, dtype=torch.float32, device=device)
        return cls(vols, means, stds, tgt, list(patients), (float(hu_window[0]), float(hu_window[1])))

    @classmethod
    def load(
        cls,
        directory: Path,
        patients: Sequence[str],
        shape: int,
        hu_window: Sequence[float],
        device: torch.device,
        targets: np.ndarray | None = None,
    ) -> ResidentVolumes:
        """Read ``directory/{patient}.npy`` for each patient onto the device."""
        arrays = (load_volume(Path(directory) / f"{p}.npy", shape) for p in patients)
        return cls.from_arrays(list(arrays), patients, hu_window, device, targets)

    @property
    def side(self) -> int:
        """Cube side ``S`` of the grid."""
        return int(self.volumes.shape[1])

    def normalised(self, i: int) -> torch.Tensor:
        """Volume ``i`` clipped and z-scored (float32, ``(S, S, S)``)."""
        return normalise(self.volumes[i], self.mean[i], self.std[i], self.hu_window)

    def subset(self, indices: Sequence[int]) -> ResidentVolumes:
        """The volumes at ``indices`` (a copy on the same device)."""
        idx = torch.as_tensor(list(indices), dtype=torch.long, device=self.volumes.device)
        tgt = None if self.targets is None else self.targets[idx]
        return ResidentVolumes(
            self.volumes[idx],
            self.mean[idx],
            self.std[idx],
            tgt,
            [self.patients[i] for i in indices],
            self.hu_window,
        )


def crop_start_bounds(targets: np.ndarray, side: int, crop_z: int) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest crop start (inclusive) per patient so that the crop holds all five levels.

    A patient whose levels span more than the crop, or lie outside the grid, gets the nearest
    feasible range (logged), so that training still sees the levels it can.
    """
    if crop_z > side:
        raise GohscoreError(f"levels.crop_z ({crop_z}) exceeds the grid side ({side}); lower crop_z")
    top, bottom = np.ceil(targets.max(1)).astype(int), np.floor(targets.min(1)).astype(int)
    lo = np.clip(top - crop_z + 1, 0, side - crop_z)
    hi = np.clip(bottom, 0, side - crop_z)
    bad = lo > hi
    if bad.any():
        log.warning(
            "%d patient(s) have levels that no %d-slice crop holds; using the closest crops",
            bad.sum(),
            crop_z,
        )
        mid = np.clip(np.round((top + bottom) / 2 - crop_z / 2).astype(int), 0, side - crop_z)
        lo, hi = np.where(bad, mid, lo), np.where(bad, mid, hi)
    return lo, hi


CROP_SAMPLINGS = ("windows", "all_levels")


def crop_start_range(
    targets: np.ndarray, side: int, crop_z: int, sampling: str
) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest training crop start per patient for a ``crop_sampling`` mode.

    ``windows``: any start that a sliding inference window can have (0 .. side - crop_z), so the
    network is trained on every window it is later asked about, including those that cut off a
    level (its target then lies outside the crop). ``all_levels``: only crops holding all five
    levels (the original code's choice, see :func:`crop_start_bounds`).
    """
    if sampling == "all_levels":
        return crop_start_bounds(targets, side, crop_z)  # checks crop_z against the grid itself
    if sampling != "windows":
        raise GohscoreError(f"levels.crop_sampling is {sampling!r}; use one of {', '.join(CROP_SAMPLINGS)}")
    if crop_z > side:
        raise GohscoreError(f"levels.crop_z ({crop_z}) exceeds the grid side ({side}); lower crop_z")
    n = len(targets)
    return np.zeros(n, dtype=int), np.full(n, side - crop_z, dtype=int)


def in_plane_indices(
    side: int, flip: torch.Tensor, shift_y: torch.Tensor, shift_x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Source rows and columns ``(B, side)`` that mirror (left-right, where ``flip``) and shift each crop in plane.

    A crop moved by ``shift`` voxels reads voxel ``i - shift``; indices past the edge are clamped,
    so the border (air) is repeated instead of wrapping the body round. None of it moves a level,
    which is a z position. Written by hand because it is two gathers on the batch tensor, where a
    resampling transform would interpolate every voxel of a 3D crop.

    >>> rows, cols = in_plane_indices(4, torch.tensor([True]), torch.tensor([1]), torch.tensor([0]))
    >>> rows.tolist(), cols.tolist()
    ([[0, 0, 1, 2]], [[3, 2, 1, 0]])
    """
    axis = torch.arange(side, device=flip.device)
    rows = (axis[None] - shift_y[:, None]).clamp(0, side - 1)
    cols = (axis[None] - shift_x[:, None]).clamp(0, side - 1)
    cols = torch.where(flip[:, None], side - 1 - cols, cols)
    return rows, cols


class CropSampler:
    """Draws training batches on the device: random patients, random z-crops (see ``sampling``), HU jitter.

    ``flip_probability`` mirrors a crop left-right and ``shift_voxels`` moves it in plane by up to
    that many voxels (``levels.flip_probability``, ``levels.shift_voxels``); both leave the level
    targets as they are. Calling it with a ``torch.Generator`` returns ``(x, y)``: ``x`` float32
    ``(B, 1, crop_z, S, S)`` and ``y`` the five target indices inside the crop as network outputs
    (see :class:`OutputScale`).
    """

    def __init__(
        self,
        data: ResidentVolumes,
        crop_z: int,
        batch_size: int,
        hu_scale_jitter: float = 0.05,
        hu_shift_jitter: float = 25.0,
        sampling: str = "all_levels",
        flip_probability: float = 0.0,
        shift_voxels: int = 0,
    ) -> None:
        """Precompute the crop starts of every patient (on the device)."""
        if data.targets is None:
            raise ValueError("training volumes need level targets")
        dev = data.volumes.device
        lo, hi = crop_start_range(data.targets.cpu().numpy(), data.side, crop_z, sampling)
        self.data, self.crop_z, self.batch_size = data, crop_z, batch_size
        self.lo = torch.as_tensor(lo, dtype=torch.long, device=dev)
        self.span = torch.as_tensor(hi - lo + 1, dtype=torch.long, device=dev)
        self.flat = data.volumes.view(-1, data.side, data.side)  # (n * S, S, S) slices
        self.offsets = torch.arange(crop_z, device=dev)
        self.scale = OutputScale.for_crop(crop_z)
        self.hu_scale_jitter, self.hu_shift_jitter = hu_scale_jitter, hu_shift_jitter
        self.flip_probability, self.shift_voxels = float(flip_probability), int(shift_voxels)

    def __call__(self, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """One batch, drawn with ``gen`` without any host synchronisation."""
        dev, b, d = self.flat.device, self.batch_size, self.data
        idx = torch.randint(0, len(d.patients), (b,), generator=gen, device=dev)
        u = torch.rand(b, generator=gen, device=dev)
        start = self.lo[idx] + torch.minimum((u * self.span[idx]).long(), self.span[idx] - 1)
        rows = (idx * d.side + start)[:, None] + self.offsets  # (B, crop) slice numbers
        hu = self.flat.index_select(0, rows.reshape(-1)).view(b, 1, self.crop_z, d.side, d.side).float()
        gain = 1.0 + self.hu_scale_jitter * (2 * torch.rand(b, generator=gen, device=dev) - 1)
        shift = self.hu_shift_jitter * (2 * torch.rand(b, generator=gen, device=dev) - 1)
        hu = hu * gain.view(b, 1, 1, 1, 1) + shift.view(b, 1, 1, 1, 1)
        if self.flip_probability > 0 or self.shift_voxels > 0:
            hu = self._in_plane(hu, gen)
        view = (b, 1, 1, 1, 1)
        x = normalise(hu, d.mean[idx].view(view), d.std[idx].view(view), d.hu_window)
        y = self.scale.to_output(d.targets[idx] - start[:, None].float())
        return x, y

    def _in_plane(self, hu: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """``hu`` ``(B, 1, Z, S, S)`` mirrored and shifted per crop (see :func:`in_plane_indices`)."""
        b, side, dev, k = hu.shape[0], hu.shape[-1], hu.device, self.shift_voxels
        flip = torch.rand(b, generator=gen, device=dev) < self.flip_probability
        shift_y, shift_x = torch.randint(-k, k + 1, (2, b), generator=gen, device=dev)
        rows, cols = in_plane_indices(side, flip, shift_y, shift_x)
        shape = hu.shape
        hu = hu.gather(3, rows.view(b, 1, 1, side, 1).expand(shape))
        return hu.gather(4, cols.view(b, 1, 1, 1, side).expand(shape))


def steps_per_epoch(value: int | None, n_train: int, batch_size: int) -> int:
    """Configured steps, or one pass over the training patients when ``null``."""
    return int(value) if value else max(1, math.ceil(n_train / batch_size))
