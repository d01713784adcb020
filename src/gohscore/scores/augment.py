"""Random augmentation of a score-training batch on its device: rotation, scale, translation, flip, noise.

The original training augmented every slice with a random affine transform (rotation,
translation, scale 0.95-1.05), flips and noise. Here the parameters of a whole batch are drawn
first (:func:`draw_augment`, with the loop's generator, so a resumed run draws the same), then
applied in one call (:func:`apply_augment`) that resamples ``(B, 1, H, W)`` on the device,
without a trip through per-image transforms; it gives what MONAI's batched ``AffineTransform``
layer gives, with a cheaper sampling grid (:func:`sampling_grid`).
Scores are fractions of the lung area, which an affine map of the whole slice leaves unchanged,
so the labels stay as they are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F

AIR_HU = -1000.0  # what enters the image from outside its border


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random augmentation (the ``scores.augmentation`` config mapping)."""

    rotate_deg: float  # uniform in +-rotate_deg
    translate_fraction: float  # uniform in +-, of the image side
    scale: tuple[float, float]  # log-uniform zoom
    flip_probability: float  # left-right mirror
    noise_hu: float  # Gaussian noise, SD uniform in [0, noise_hu] per slice

    @classmethod
    def from_section(cls, section: Mapping | None) -> AugmentConfig | None:
        """The ranges of a ``scores.augmentation`` mapping, absent keys from the schema (``None``: no augmentation)."""
        if not section:
            return None
        from gohscore.settings import augmentation_defaults

        known = {
            **augmentation_defaults(),
            **{f: section[f] for f in cls.__dataclass_fields__ if f in section},
        }
        known["scale"] = (float(known["scale"][0]), float(known["scale"][1]))
        return cls(**known)

    @classmethod
    def defaults(cls) -> AugmentConfig:
        """The schema's default ranges."""
        from gohscore.settings import augmentation_defaults

        return cls.from_section(augmentation_defaults())


@dataclass
class AugmentParams:
    """Everything random about the augmentation of ``B`` slices."""

    angle: torch.Tensor  # (B,) rad
    zoom: torch.Tensor  # (B,) >1 enlarges the anatomy
    shift: torch.Tensor  # (B, 2) fraction of the image side, (row, column)
    flip: torch.Tensor  # (B,) bool, mirror the columns
    noise_sd: torch.Tensor  # (B,) HU


def draw_augment(n: int, cfg: AugmentConfig, gen: torch.Generator, device: torch.device) -> AugmentParams:
    """Draw the parameters of ``n`` augmentations with ``gen`` (on ``device``)."""

    def uniform(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(*shape, generator=gen, device=device)

    rot = math.radians(cfg.rotate_deg)
    lo, hi = math.log(cfg.scale[0]), math.log(cfg.scale[1])
    t = cfg.translate_fraction
    return AugmentParams(
        angle=uniform(-rot, rot, n),
        zoom=torch.exp(uniform(lo, hi, n)),
        shift=uniform(-t, t, n, 2),
        flip=torch.rand(n, generator=gen, device=device) < cfg.flip_probability,
        noise_sd=uniform(0.0, cfg.noise_hu, n),
    )


def affine_matrices(params: AugmentParams) -> torch.Tensor:
    """``(B, 2, 3)`` maps from output to input coordinates, normalised to [-1, 1], (row, column) order."""
    cos, sin = torch.cos(params.angle), torch.sin(params.angle)
    inv = 1.0 / params.zoom
    mirror = torch.where(params.flip, -1.0, 1.0).to(cos.dtype)
    theta = torch.zeros(len(cos), 2, 3, device=cos.device, dtype=cos.dtype)
    theta[:, 0, 0], theta[:, 0, 1] = inv * cos, -inv * sin * mirror
    theta[:, 1, 0], theta[:, 1, 1] = inv * sin, inv * cos * mirror
    theta[:, :, 2] = 2.0 * params.shift  # a shift of a fraction f of the side is 2f in [-1, 1]
    return theta


def sampling_grid(theta: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """``grid_sample``'s ``(B, H, W, 2)`` grid (x, y) for (row, column) matrices ``theta`` (corners not aligned).

    The same grid as ``torch.nn.functional.affine_grid`` after swapping ``theta`` into torch's
    (x, y) order, which MONAI's ``AffineTransform`` does, but built as a sum of a row term and a
    column term: on a CPU ``affine_grid`` costs about four times the resampling itself.
    """
    h, w = shape
    rows = ((2 * torch.arange(h, device=theta.device, dtype=theta.dtype) + 1) / h - 1)[None, :, None, None]
    cols = ((2 * torch.arange(w, device=theta.device, dtype=theta.dtype) + 1) / w - 1)[None, None, :, None]
    # theta maps (row, col, 1) to (row, col); the grid wants (x = col, y = row)
    lin = theta[:, [1, 0], :2].flip(-1)  # (B, 2, 2): [x, y] outputs from [col, row] inputs
    shift = theta[:, [1, 0], 2][:, None, None, :]
    return (cols * lin[:, None, None, :, 0] + shift) + rows * lin[:, None, None, :, 1]


def apply_augment(hu: torch.Tensor, params: AugmentParams, noise: torch.Tensor | None = None) -> torch.Tensor:
    """Augmented copy of HU slices ``(B, H, W)``; ``noise`` is standard normal ``(B, H, W)`` (or none).

    Bilinear resampling by torch's ``grid_sample`` on the grid of :func:`sampling_grid`, the
    result of MONAI's ``AffineTransform`` layer (a test checks one against the other) at a
    fraction of its CPU cost.
    """
    grid = sampling_grid(affine_matrices(params), tuple(hu.shape[1:]))
    # shifting by air before the warp makes the zero padding read as air
    out = F.grid_sample(
        (hu.float() - AIR_HU)[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    out = out[:, 0].add_(AIR_HU)
    if noise is not None:
        out.addcmul_(noise, params.noise_sd[:, None, None])
    return out


def augment_batch(hu: torch.Tensor, cfg: AugmentConfig | None, gen: torch.Generator) -> torch.Tensor:
    """Draw and apply a random augmentation of every slice in ``hu`` (``(B, H, W)``); identity when ``cfg`` is None."""
    if cfg is None:
        return hu
    params = draw_augment(hu.shape[0], cfg, gen, hu.device)
    noise = torch.randn(hu.shape, generator=gen, device=hu.device) if cfg.noise_hu > 0 else None
    return apply_augment(hu, params, noise)
