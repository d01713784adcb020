"""On-the-fly synthesis of ground glass (GG) and reticulation (RET) on healthy slices (paper, Figure 3).

Up to three random ellipses per pattern, cut by the lung mask, are filled with GG (the slice
brightened by about +300 HU and blurred, or a GG texture) and RET (a tiled texture of real RET
patches, taken where it is denser than the slice, so GG haze and vessels survive in its cells); the edges are blended through a blurred mask, nothing outside the lung changes, and the
new scores are the areas of the patterns over the lung area (TOT: their union), rounded half up to 5.

Parameters are drawn first (:func:`draw_params`, numpy generator), then applied deterministically
and vectorised over the batch on any torch device (:func:`apply_synthesis`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from gohscore.goh import SCORE_STEP, round_to_5_torch
from gohscore.scores.textures import TexturePool, sample_texture


@dataclass(frozen=True)
class SynthesisConfig:
    """Ranges of the random synthesis; fractions are of the lung's extent or of the slice width."""

    max_ellipses: int = 3
    min_axis_fraction: float = 0.05  # semi-axes, of the lung's bounding-box extent
    max_axis_fraction: float = 0.45  # the paper's "up to ~200 px" on 512 px slices
    edge_sigma_fraction: float = 0.012  # blend blur, of the slice width (~6 px at 512)
    gg_sigma_fraction: float = 0.004  # GG haze blur (~2 px at 512)
    gg_delta_hu: tuple[float, float] = (200.0, 400.0)
    texture_scale: tuple[float, float] = (0.75, 1.33)
    gg_patch_probability: float = 0.5  # use a GG texture instead of brightening, when GG patches exist
    lung_samples: int = 256  # lung pixels kept per slice to draw ellipse centres from


@dataclass
class SynthesisParams:
    """Everything random about a batch of ``B`` syntheses (pattern axis: 0 = GG, 1 = RET)."""

    centres: np.ndarray  # (B, 2, E, 2) ellipse centres, pixels (y, x)
    axes: np.ndarray  # (B, 2, E, 2) semi-axes, pixels
    angles: np.ndarray  # (B, 2, E) orientation, rad
    active: np.ndarray  # (B, 2, E) bool, which ellipses exist
    gg_delta_hu: np.ndarray  # (B,)
    gg_use_patch: np.ndarray  # (B,) bool
    tile_index: np.ndarray  # (B, 2) texture tile per pattern
    tile_angle: np.ndarray  # (B, 2) rad
    tile_scale: np.ndarray  # (B, 2)
    tile_offset: np.ndarray  # (B, 2, 2) fraction of the tile, (y, x)


@dataclass
class SynthesisResult:
    """Synthetic slices, their scores (TOT, GG, RET, %) and the hard GG/RET masks."""

    images: torch.Tensor  # (B, H, W) HU
    scores: torch.Tensor  # (B, 3)
    gg_mask: torch.Tensor  # (B, H, W) bool
    ret_mask: torch.Tensor  # (B, H, W) bool


def lung_summary(
    lung: np.ndarray, rng: np.random.Generator, n_samples: int = 256
) -> tuple[np.ndarray, float]:
    """``n_samples`` random lung pixel coordinates ``(n, 2)`` and the lung's bounding-box extent in pixels."""
    coords = np.argwhere(lung)
    if len(coords) == 0:
        raise ValueError("empty lung mask")
    pick = coords[rng.integers(0, len(coords), size=n_samples)].astype(np.float32)
    extent = float(max(np.ptp(coords[:, 0]), np.ptp(coords[:, 1])) + 1)
    return pick, extent


def draw_params(
    rng: np.random.Generator,
    lung_coords: np.ndarray,
    lung_extent: np.ndarray,
    n_tiles: tuple[int, int],
    cfg: SynthesisConfig = SynthesisConfig(),
) -> SynthesisParams:
    """Draw the parameters of ``B`` syntheses from lung samples ``(B, K, 2)``, extents ``(B,)`` and the
    number of GG and RET tiles (GG may be 0: then GG is always made by brightening).
    """
    b, k, e = lung_coords.shape[0], lung_coords.shape[1], cfg.max_ellipses
    counts = rng.integers(0, e + 1, size=(b, 2))
    empty = counts.sum(axis=1) == 0
    counts[empty, rng.integers(0, 2, size=int(empty.sum()))] = 1  # at least one ellipse somewhere
    active = np.arange(e)[None, None, :] < counts[:, :, None]
    pick = rng.integers(0, k, size=(b, 2, e))
    centres = np.take_along_axis(lung_coords[:, None, :, :], pick.reshape(b, 1, -1, 1), axis=2)
    centres = centres.reshape(b, 2, e, 2)
    frac = rng.uniform(cfg.min_axis_fraction, cfg.max_axis_fraction, size=(b, 2, e, 2))
    n_gg, n_ret = n_tiles
    if n_ret < 1:
        raise ValueError("synthesis needs at least one RET texture tile")
    return SynthesisParams(
        centres=centres.astype(np.float32),
        axes=(frac * np.asarray(lung_extent, dtype=np.float64)[:, None, None, None]).astype(np.float32),
        angles=rng.uniform(0.0, math.pi, size=(b, 2, e)).astype(np.float32),
        active=active,
        gg_delta_hu=rng.uniform(*cfg.gg_delta_hu, size=b).astype(np.float32),
        gg_use_patch=(rng.random(b) < cfg.gg_patch_probability) & (n_gg > 0),
        tile_index=np.stack([rng.integers(0, max(n_gg, 1), size=b), rng.integers(0, n_ret, size=b)], axis=1),
        tile_angle=rng.uniform(0.0, 2 * math.pi, size=(b, 2)).astype(np.float32),
        tile_scale=np.exp(rng.uniform(*np.log(cfg.texture_scale), size=(b, 2))).astype(np.float32),
        tile_offset=rng.random(size=(b, 2, 2)).astype(np.float32),
    )


def extent_targets(
    real_tot: np.ndarray,
    draw_weights: np.ndarray,
    probability: float,
    on: str,
    step: float = SCORE_STEP,
) -> np.ndarray:
    """Probabilities of the synthetic TOT targets ``step, 2*step, ...`` that level the histogram of the draws.

    ``real_tot`` are the training slices' TOT scores and ``draw_weights`` how often each is drawn;
    a draw is replaced with ``probability``, if healthy (``on="healthy"``) or whatever it is
    (``"any"``). The synthetic share of the draws is poured into the diseased bins up to the
    highest real score (at least two bins) like water: first into the bins that the real draws
    fill least, up to one common level, so synthesis evens out what the network sees instead of
    adding a peak of its own.

    >>> extent_targets(np.array([0, 5, 5, 5, 10, 20]), np.ones(6), 0.5, "healthy").round(3).tolist()
    [0.0, 0.0, 1.0, 0.0]
    >>> extent_targets(np.array([0, 5, 5, 5, 10, 20]), np.ones(6), 0.9, on="any").round(3).tolist()
    [0.218, 0.255, 0.273, 0.255]
    """
    tot = np.asarray(real_tot, dtype=np.float64)
    w = np.asarray(draw_weights, dtype=np.float64)
    w = w / w.sum()
    bins = np.rint(tot / step).astype(int)
    top = max(2, int(bins.max()) if bins.size else 2)
    ill = bins > 0
    if on == "any":
        synthetic, real = probability, (1.0 - probability) * w
    else:
        synthetic, real = probability * w[~ill].sum(), w
    drawn = np.bincount(bins[ill], weights=real[ill], minlength=top + 1)[1 : top + 1]
    if synthetic <= 0:
        return np.full(top, 1.0 / top)
    low = np.sort(drawn)
    for k in range(1, top + 1):  # the water level over the k least-filled bins
        level = (synthetic + low[:k].sum()) / k
        if k == top or level <= low[k]:
            break
    fill = np.maximum(0.0, level - drawn)
    return fill / fill.sum()


def draw_extents(rng: np.random.Generator, pmf: np.ndarray, n: int, step: float = SCORE_STEP) -> np.ndarray:
    """``n`` target TOT values (%) drawn from the bins of :func:`extent_targets`, uniform within a bin."""
    centre = step * (1 + rng.choice(len(pmf), size=n, p=pmf))
    return np.clip(centre + rng.uniform(-step / 2, step / 2, size=n), step / 2, 100.0)


def fit_extent(
    params: SynthesisParams,
    lungs: torch.Tensor,
    target_pct: np.ndarray,
    iterations: int = 4,
) -> SynthesisParams:
    """The same ellipses, their axes scaled so that their union covers about ``target_pct`` % of each lung.

    Each step renders the masks, measures the covered share and scales every axis by the square
    root of target / measured (clamped), which converges in a few steps for ellipses inside the
    lung; the scores of the final masks, not the targets, are what the network is taught.
    """
    lungs = lungs.to(torch.bool)
    area = lungs.flatten(1).sum(1).clamp(min=1).float().cpu().numpy()
    target = np.asarray(target_pct, dtype=np.float64)
    axes = params.axes.astype(np.float64)
    for _ in range(iterations):
        trial = replace(params, axes=axes.astype(np.float32))
        cover = (ellipse_masks(trial, tuple(lungs.shape[1:]), lungs.device).any(1) & lungs).flatten(1).sum(1)
        pct = 100.0 * cover.float().cpu().numpy() / area
        factor = np.clip(np.sqrt(target / np.maximum(pct, 0.25)), 0.5, 2.0)
        axes = axes * factor[:, None, None, None]
    return replace(params, axes=np.maximum(axes, 0.5).astype(np.float32))


def ellipse_masks(params: SynthesisParams, shape: tuple[int, int], device: torch.device) -> torch.Tensor:
    """Union of each pattern's active ellipses: ``(B, 2, H, W)`` bool."""
    h, w = shape
    t = lambda a: torch.as_tensor(a, device=device)  # noqa: E731
    yy = torch.arange(h, device=device, dtype=torch.float32)[:, None]
    xx = torch.arange(w, device=device, dtype=torch.float32)[None, :]
    c, ax, ang = (
        t(params.centres)[..., None, None],
        t(params.axes)[..., None, None],
        t(params.angles)[..., None, None],
    )
    dy, dx = yy - c[:, :, :, 0], xx - c[:, :, :, 1]
    cos, sin = torch.cos(ang), torch.sin(ang)
    u, v = cos * dy + sin * dx, -sin * dy + cos * dx
    inside = (u / ax[:, :, :, 0]) ** 2 + (v / ax[:, :, :, 1]) ** 2 <= 1.0
    return (inside & t(params.active)[..., None, None]).any(dim=2)


def gaussian_blur(images: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(N, H, W)`` with edge replication (identity below 0.3 px)."""
    if sigma_px < 0.3:
        return images
    radius = max(1, math.ceil(3 * sigma_px))
    x = torch.arange(-radius, radius + 1, device=images.device, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma_px) ** 2)
    k = (k / k.sum()).view(1, 1, -1)
    n, h, w = images.shape
    out = images.float().reshape(n * h, 1, w)
    out = F.conv1d(F.pad(out, (radius, radius), mode="replicate"), k).reshape(n, h, w)
    out = out.transpose(1, 2).reshape(n * w, 1, h)
    out = F.conv1d(F.pad(out, (radius, radius), mode="replicate"), k).reshape(n, w, h)
    return out.transpose(1, 2).contiguous()


def pattern_scores(gg: torch.Tensor, ret: torch.Tensor, lung: torch.Tensor) -> torch.Tensor:
    """TOT, GG, RET (%) of masks inside ``lung``, rounded half up to 5, with TOT <= GG + RET kept."""
    area = lung.flatten(1).sum(1).clamp(min=1).float()
    pct = lambda m: 100.0 * (m & lung).flatten(1).sum(1).float() / area  # noqa: E731
    gg_r, ret_r = round_to_5_torch(pct(gg)), round_to_5_torch(pct(ret))
    tot_r = torch.minimum(round_to_5_torch(pct(gg | ret)), gg_r + ret_r)
    return torch.stack([tot_r, gg_r, ret_r], dim=1)


def apply_synthesis(
    images: torch.Tensor,
    lungs: torch.Tensor,
    params: SynthesisParams,
    ret_pool: TexturePool,
    gg_pool: TexturePool | None,
    pixel_spacing_mm: torch.Tensor,
    cfg: SynthesisConfig = SynthesisConfig(),
) -> SynthesisResult:
    """Insert GG and RET into HU slices ``(B, H, W)`` with lung masks ``(B, H, W)``; deterministic."""
    device = images.device
    b, h, w = images.shape
    images = images.float()
    lungs = lungs.to(device=device, dtype=torch.bool)
    masks = ellipse_masks(params, (h, w), device) & lungs[:, None]
    gg, ret = masks[:, 0], masks[:, 1]
    alpha = gaussian_blur(masks.reshape(b * 2, h, w).float(), cfg.edge_sigma_fraction * w).reshape(b, 2, h, w)
    alpha = alpha * lungs[:, None]
    spacing = pixel_spacing_mm.to(device=device, dtype=torch.float32)

    def texture(pool: TexturePool, col: int) -> torch.Tensor:
        idx = torch.as_tensor(params.tile_index[:, col], device=device, dtype=torch.long)
        offset = torch.as_tensor(params.tile_offset[:, col], device=device) * pool.shapes[idx].float()
        return sample_texture(
            pool,
            idx,
            torch.as_tensor(params.tile_angle[:, col], device=device),
            torch.as_tensor(params.tile_scale[:, col], device=device),
            offset,
            spacing,
            (h, w),
        )

    delta = torch.as_tensor(params.gg_delta_hu, device=device)[:, None, None]
    gg_image = gaussian_blur(images, cfg.gg_sigma_fraction * w) + delta
    if gg_pool is not None and bool(params.gg_use_patch.any()):
        use = torch.as_tensor(params.gg_use_patch, device=device)[:, None, None]
        gg_image = torch.where(use, texture(gg_pool.to(device), 0), gg_image)
    out = images * (1 - alpha[:, 0]) + gg_image * alpha[:, 0]
    # RET keeps what is denser underneath (vessels, GG haze in its cells) and adds its walls.
    ret_image = torch.maximum(out, texture(ret_pool.to(device), 1))
    out = out * (1 - alpha[:, 1]) + ret_image * alpha[:, 1]
    out = torch.where(lungs, out, images)
    return SynthesisResult(out, pattern_scores(gg, ret, lungs), gg, ret)


def synthesize(
    slice_hu: np.ndarray,
    lung: np.ndarray,
    rng: np.random.Generator,
    ret_pool: TexturePool,
    gg_pool: TexturePool | None = None,
    pixel_spacing_mm: float = 1.0,
    cfg: SynthesisConfig = SynthesisConfig(),
) -> tuple[np.ndarray, np.ndarray, SynthesisParams, SynthesisResult]:
    """One synthetic slice (numpy, CPU): returns the image (HU), scores [TOT, GG, RET], params and masks.

    >>> from gohscore.scores.textures import procedural_pool
    >>> img = np.full((64, 64), -850.0); lung = np.zeros((64, 64), bool); lung[10:54, 8:56] = True
    >>> out, scores, _, _ = synthesize(img, lung, np.random.default_rng(0), procedural_pool(0))
    >>> bool((out[~lung] == img[~lung]).all()), scores.tolist() == [s // 5 * 5 for s in scores.tolist()]
    (True, True)
    """
    coords, extent = lung_summary(lung, rng, cfg.lung_samples)
    n_gg = 0 if gg_pool is None else len(gg_pool)
    params = draw_params(rng, coords[None], np.array([extent]), (n_gg, len(ret_pool)), cfg)
    res = apply_synthesis(
        torch.as_tensor(np.asarray(slice_hu, dtype=np.float32))[None],
        torch.as_tensor(np.asarray(lung, dtype=bool))[None],
        params,
        ret_pool,
        gg_pool,
        torch.tensor([pixel_spacing_mm]),
        cfg,
    )
    return res.images[0].numpy(), res.scores[0].numpy(), params, res
