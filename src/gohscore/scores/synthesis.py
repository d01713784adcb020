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

    Each step measures the covered share and scales every axis by the square root of target /
    measured (clamped), which converges in a few steps for ellipses inside the lung; the scores of
    the final masks, not the targets, are what the network is taught. Scaling all of a sample's
    axes by ``s`` divides its quadratic forms by ``s**2``, so the forms are computed once and each
    step only compares them with the running ``s**2``.
    """
    lungs = lungs.to(torch.bool)
    area = lungs.flatten(1).sum(1).clamp(min=1).float().cpu().numpy()
    target = np.asarray(target_pct, dtype=np.float64)
    nearest = ellipse_forms(params, tuple(lungs.shape[1:]), lungs.device).amin(dim=1)  # GG and RET together
    nearest = torch.where(lungs, nearest, torch.inf).flatten(1)
    scale = np.ones(len(target))
    for _ in range(iterations):
        bound = torch.as_tensor(scale**2, dtype=torch.float32, device=lungs.device)[:, None]
        cover = (nearest <= bound).sum(1)
        pct = 100.0 * cover.float().cpu().numpy() / area
        scale = scale * np.clip(np.sqrt(target / np.maximum(pct, 0.25)), 0.5, 2.0)
    axes = params.axes.astype(np.float64) * scale[:, None, None, None]
    return replace(params, axes=np.maximum(axes, 0.5).astype(np.float32))


def ellipse_forms(params: SynthesisParams, shape: tuple[int, int], device: torch.device) -> torch.Tensor:
    """Per pattern, the smallest quadratic form of its active ellipses at every pixel: ``(B, 2, H, W)``.

    A pixel lies inside an ellipse where its form is at most 1; the value is ``inf`` where a
    pattern has no active ellipse. The form of an ellipse with semi-axes ``(a, b)`` turned by ``t``
    is ``A dy**2 + B dy dx + C dx**2`` around its centre, so each ellipse costs one outer product
    and two broadcast additions, and inactive ellipses cost nothing.
    """
    h, w = shape
    b, p, e = params.active.shape
    out = torch.full((b * p * e, h, w), torch.inf, device=device)
    rows = np.flatnonzero(params.active.reshape(-1))
    if len(rows):
        pick = lambda a: torch.as_tensor(a.reshape(b * p * e, -1)[rows], device=device)  # noqa: E731
        centre, axes, angle = (
            pick(params.centres).float(),
            pick(params.axes).double(),
            pick(params.angles).double(),
        )
        cos, sin = torch.cos(angle[:, 0]), torch.sin(angle[:, 0])
        ia, ib = axes[:, 0] ** -2, axes[:, 1] ** -2
        coef = lambda c: c.float()[:, None, None]  # noqa: E731
        qa, qb, qc = (
            coef(cos**2 * ia + sin**2 * ib),
            coef(2 * cos * sin * (ia - ib)),
            coef(sin**2 * ia + cos**2 * ib),
        )
        dy = torch.arange(h, device=device, dtype=torch.float32)[None, :, None] - centre[:, 0, None, None]
        dx = torch.arange(w, device=device, dtype=torch.float32)[None, None, :] - centre[:, 1, None, None]
        form = (qb * dy) * dx
        form += qa * dy**2
        form += qc * dx**2
        out[torch.as_tensor(rows, device=device)] = form
    return out.view(b, p, e, h, w).amin(dim=2)


def ellipse_masks(params: SynthesisParams, shape: tuple[int, int], device: torch.device) -> torch.Tensor:
    """Union of each pattern's active ellipses: ``(B, 2, H, W)`` bool."""
    return ellipse_forms(params, shape, device) <= 1.0


def gaussian_blur(images: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(N, H, W)`` with edge replication (identity below 0.3 px).

    Each pass is a weighted sum of shifted views of the padded images: for these few-tap kernels
    that was about twice as fast on a CPU as a single-channel convolution (not timed on a GPU).
    """
    if sigma_px < 0.3:
        return images
    radius = max(1, math.ceil(3 * sigma_px))
    taps = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (taps / sigma_px) ** 2)
    k = (k / k.sum()).tolist()
    n, h, w = images.shape
    padded = F.pad(images.float()[:, None], (radius, radius, radius, radius), mode="replicate")[:, 0]
    rows = padded[:, :, :w] * k[0]
    for i in range(1, len(k)):
        rows.add_(padded[:, :, i : i + w], alpha=k[i])
    out = rows[:, :h] * k[0]
    for i in range(1, len(k)):
        out.add_(rows[:, i : i + h], alpha=k[i])
    return out


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
    # blend weights; outside the lung they do not matter, as the last step restores those pixels
    alpha = gaussian_blur(masks.reshape(b * 2, h, w).float(), cfg.edge_sigma_fraction * w).reshape(b, 2, h, w)
    spacing = pixel_spacing_mm.to(device=device, dtype=torch.float32)

    def texture(pool: TexturePool, col: int, rows: np.ndarray) -> torch.Tensor:
        idx = torch.as_tensor(params.tile_index[rows, col], device=device, dtype=torch.long)
        offset = torch.as_tensor(params.tile_offset[rows, col], device=device) * pool.shapes[idx].float()
        return sample_texture(
            pool,
            idx,
            torch.as_tensor(params.tile_angle[rows, col], device=device),
            torch.as_tensor(params.tile_scale[rows, col], device=device),
            offset,
            spacing[torch.as_tensor(rows, device=device)],
            (h, w),
        )

    delta = torch.as_tensor(params.gg_delta_hu, device=device)[:, None, None]
    gg_image = gaussian_blur(images, cfg.gg_sigma_fraction * w) + delta
    patched = np.flatnonzero(params.gg_use_patch) if gg_pool is not None else np.zeros(0, dtype=int)
    if len(patched):  # textures only for the slices whose GG is a patch texture
        gg_image[torch.as_tensor(patched, device=device)] = texture(gg_pool.to(device), 0, patched)
    out = torch.lerp(images, gg_image, alpha[:, 0])
    # RET keeps what is denser underneath (vessels, GG haze in its cells) and adds its walls.
    ret_image = torch.maximum(out, texture(ret_pool.to(device), 1, np.arange(b)))
    out = torch.lerp(out, ret_image, alpha[:, 1])
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
