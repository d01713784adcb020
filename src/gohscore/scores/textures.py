"""Texture patches for synthesis: mirrored tiles of real GG/RET patches (or a procedural RET net), sampled
rotated and scaled at any pixel spacing.

Only patches of the fold's training patients may enter a pool: :func:`load_pool` filters on them and
:func:`check_pool_patients` refuses a pool that holds anyone else (the original code's leak).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import ndimage as ndi

from gohscore.errors import GohscoreError

log = logging.getLogger("gohscore")

PROCEDURAL = "<procedural>"


@dataclass
class TexturePool:
    """Mirrored texture tiles of one pattern, padded into one tensor, with their source patients."""

    pattern: str
    tiles: torch.Tensor  # (P, Tmax_y, Tmax_x) float32 HU, each tile in the top-left corner
    shapes: torch.Tensor  # (P, 2) int64 tile height and width
    spacing_mm: torch.Tensor  # (P,) float32 pixel spacing of each tile
    patients: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        """Number of tiles."""
        return int(self.tiles.shape[0])

    def to(self, device: torch.device | str) -> TexturePool:
        """The same pool with its tensors on ``device``."""
        return TexturePool(
            self.pattern,
            self.tiles.to(device),
            self.shapes.to(device),
            self.spacing_mm.to(device),
            list(self.patients),
        )


def mirror_tile(patch: np.ndarray) -> np.ndarray:
    """A ``(2h, 2w)`` tile of the patch and its mirror images; repeating it has no seams."""
    top = np.concatenate([patch, patch[:, ::-1]], axis=1)
    return np.concatenate([top, top[::-1]], axis=0)


def build_pool(
    pattern: str, patches: Sequence[np.ndarray], spacing_mm: Sequence[float], patients: Sequence[str]
) -> TexturePool:
    """Pool of mirrored tiles from 2D HU ``patches`` (each with its pixel spacing and patient)."""
    if not patches:
        raise ValueError(f"no {pattern} patches to build a pool from")
    tiles = [mirror_tile(np.asarray(p, dtype=np.float32)) for p in patches]
    ty, tx = max(t.shape[0] for t in tiles), max(t.shape[1] for t in tiles)
    stack = np.zeros((len(tiles), ty, tx), dtype=np.float32)
    for i, t in enumerate(tiles):
        stack[i, : t.shape[0], : t.shape[1]] = t
    shapes = torch.tensor([t.shape for t in tiles], dtype=torch.int64)
    return TexturePool(
        pattern,
        torch.from_numpy(stack),
        shapes,
        torch.tensor(list(spacing_mm), dtype=torch.float32),
        [str(p) for p in patients],
    )


def procedural_reticulation(
    rng: np.random.Generator,
    size: int = 128,
    spacing_mm: float = 0.7,
    cell_mm: float = 15.0,
    line_mm: float = 1.5,
    line_hu: float = -150.0,
    background_hu: float = -800.0,
) -> np.ndarray:
    """A periodic reticular net (HU): Voronoi cell walls of about ``line_mm`` around ``cell_mm`` cells."""
    n_points = max(4, round((size * spacing_mm / cell_mm) ** 2))
    pts = rng.uniform(0, size, size=(n_points, 2))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    dy = np.abs(yy[..., None] - pts[:, 0])
    dx = np.abs(xx[..., None] - pts[:, 1])
    d = np.hypot(np.minimum(dy, size - dy), np.minimum(dx, size - dx))
    d.sort(axis=-1)
    walls = (d[..., 1] - d[..., 0]) < (line_mm / spacing_mm)
    img = np.where(walls, line_hu, background_hu) + rng.normal(0.0, 30.0, size=(size, size))
    return ndi.gaussian_filter(img, 0.6, mode="wrap").astype(np.float32)


def procedural_pool(seed: int, n: int = 4, spacing_mm: float = 0.7) -> TexturePool:
    """A RET pool of ``n`` procedural nets (used when no real RET patch is available)."""
    rng = np.random.default_rng([seed, 4242])
    patches = [
        procedural_reticulation(rng, spacing_mm=spacing_mm, cell_mm=float(rng.uniform(10, 25)))
        for _ in range(n)
    ]
    return build_pool("RET", patches, [spacing_mm] * n, [PROCEDURAL] * n)


def read_patch(path: Path) -> tuple[np.ndarray, float]:
    """A 2D HU patch and its mean in-plane pixel spacing (mm) from any SimpleITK-readable file."""
    import SimpleITK as sitk

    img = sitk.ReadImage(str(path))
    arr = np.squeeze(sitk.GetArrayFromImage(img)).astype(np.float32)
    if arr.ndim != 2:
        raise GohscoreError(f"{path}: a texture patch must be 2D, got shape {arr.shape}; crop one slice")
    return arr, float(np.mean(img.GetSpacing()[:2]))


def check_pool_patients(pool: TexturePool, allowed: Iterable[str]) -> None:
    """Refuse a pool holding a patch of a patient outside ``allowed`` (a validation/test leak)."""
    allowed = set(map(str, allowed)) | {PROCEDURAL}
    leaked = sorted(set(pool.patients) - allowed)
    if leaked:
        raise GohscoreError(
            f"{pool.pattern} texture pool holds patches of non-training patients {leaked[:5]}; "
            "synthesis may only use the fold's training patients"
        )


def load_pool(patches: pd.DataFrame, pattern: str, allowed: Iterable[str]) -> TexturePool | None:
    """Pool of the ``pattern`` patches whose patient is in ``allowed``; ``None`` when there is none."""
    allowed = set(map(str, allowed))
    rows = patches[patches["pattern"].astype(str).str.upper() == pattern]
    kept = rows[rows["patient"].astype(str).isin(allowed)]
    if len(rows) > len(kept):
        log.info(
            "%s patches: %d of %d kept (the others belong to non-training patients)",
            pattern,
            len(kept),
            len(rows),
        )
    arrays, spacings, owners = [], [], []
    for i, row in kept.iterrows():
        path = Path(str(row["file"]))
        if not path.is_file():
            raise GohscoreError(f"patches table row {i}: file {path} not found; fix the 'file' column")
        arr, mm = read_patch(path)
        arrays.append(arr)
        spacings.append(mm)
        owners.append(str(row["patient"]))
    if not arrays:
        return None
    pool = build_pool(pattern, arrays, spacings, owners)
    check_pool_patients(pool, allowed)
    return pool


def sample_texture(
    pool: TexturePool,
    index: torch.Tensor,
    angle: torch.Tensor,
    scale: torch.Tensor,
    offset: torch.Tensor,
    out_spacing_mm: torch.Tensor,
    shape: tuple[int, int],
) -> torch.Tensor:
    """Fill ``(B, *shape)`` with tiled textures: tile ``index[b]`` rotated by ``angle[b]`` (rad), magnified
    ``scale[b]`` times, shifted by ``offset[b]`` tile pixels, seen at ``out_spacing_mm[b]`` per pixel.
    """
    device = pool.tiles.device
    h, w = shape
    yy = (torch.arange(h, device=device, dtype=torch.float32) - h / 2)[None, :, None]
    xx = (torch.arange(w, device=device, dtype=torch.float32) - w / 2)[None, None, :]
    ratio = (out_spacing_mm.to(device) / (pool.spacing_mm[index] * scale.to(device)))[:, None, None]
    cos = torch.cos(angle.to(device))[:, None, None] * ratio
    sin = torch.sin(angle.to(device))[:, None, None] * ratio
    off = offset.to(device)
    # tile coordinates as a row term plus a column term: one full-size addition each
    u = (cos * yy + off[:, 0, None, None]) - sin * xx
    v = (sin * yy + off[:, 1, None, None]) + cos * xx
    th, tw = pool.shapes[index, 0][:, None, None], pool.shapes[index, 1][:, None, None]
    iy = torch.remainder(torch.floor(u), th).long()  # float remainder: cheaper than on integers
    ix = torch.remainder(torch.floor(v), tw).long()
    stride_y, stride_x = pool.tiles.shape[2], pool.tiles.shape[1] * pool.tiles.shape[2]
    flat = (index[:, None, None] * stride_x + iy * stride_y).add_(ix)
    return torch.take(pool.tiles, flat)
