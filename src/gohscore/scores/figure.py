"""Draw docs/synthesis.png: a healthy slice, its lung mask, the GG and RET masks and the synthetic result.

Run ``python -m gohscore.scores.figure docs/synthesis.png``; the slice is built here (no data needed).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from gohscore.files import atomic_path
from gohscore.scores.lungmask import lung_mask
from gohscore.scores.synthesis import synthesize
from gohscore.scores.textures import procedural_pool


def _ellipse(shape: tuple[int, int], cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    """Boolean filled ellipse."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1


def healthy_slice(size: int = 256, seed: int = 0) -> np.ndarray:
    """A simple healthy chest slice in HU: fat-rimmed body, two lungs with vessels, heart, spine."""
    rng = np.random.default_rng([seed, 11])
    s, shape = size / 256, (size, size)
    img = np.full(shape, -1000.0)
    img[_ellipse(shape, 128 * s, 128 * s, 92 * s, 118 * s)] = -90.0
    img[_ellipse(shape, 128 * s, 128 * s, 86 * s, 112 * s)] = 45.0
    lungs = _ellipse(shape, 120 * s, 78 * s, 62 * s, 40 * s) | _ellipse(
        shape, 120 * s, 178 * s, 62 * s, 40 * s
    )
    lungs &= ~_ellipse(shape, 140 * s, 140 * s, 36 * s, 34 * s)  # heart
    img[lungs] = -860.0
    field = ndi.gaussian_filter(rng.normal(size=shape), 1.2 * s)
    vessels = field > 2.3 * field.std()  # about 1% of the lung: small dense dots
    img[lungs & vessels] = -100.0
    img[_ellipse(shape, 196 * s, 128 * s, 14 * s, 14 * s)] = 300.0  # vertebral body
    img[_ellipse(shape, 70 * s, 128 * s, 7 * s, 7 * s)] = -1000.0  # trachea
    return ndi.gaussian_filter(img, 0.7 * s) + rng.normal(0, 15, shape)


def draw(out: Path, size: int = 256, seed: int = 8) -> None:
    """Draw the five panels into ``out`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img = healthy_slice(size)
    lung = lung_mask(img)
    result, scores, _, res = synthesize(
        img, lung, np.random.default_rng(seed), procedural_pool(seed), pixel_spacing_mm=350 / size
    )
    gg, ret = res.gg_mask[0].numpy(), res.ret_mask[0].numpy()
    window = {"cmap": "gray", "vmin": -1200, "vmax": 300}
    overlay = np.zeros((*img.shape, 4))
    overlay[gg] = (1.0, 0.2, 0.2, 0.55)
    overlay[ret] = (0.2, 0.9, 0.2, 0.55)
    overlay[gg & ret] = (1.0, 0.9, 0.1, 0.7)
    fig, axes = plt.subplots(1, 5, figsize=(16, 3.8))
    panels = [
        ("a  healthy slice", img, window),
        ("b  lung mask", lung, {"cmap": "gray"}),
        ("c  GG (red), RET (green) ∩ lung", lung * 0.3, {"cmap": "gray", "vmin": 0, "vmax": 1}),
        ("d  synthetic slice", result, window),
        ("e  synthetic slice, outlines", result, window),
    ]
    for ax, (title, data, kw) in zip(axes, panels, strict=True):
        ax.imshow(data, **kw)
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    axes[2].imshow(overlay)
    axes[4].contour(gg, levels=[0.5], colors="red", linewidths=0.8)
    axes[4].contour(ret, levels=[0.5], colors="lime", linewidths=0.8)
    tot, g, r = (int(v) for v in scores)
    fig.suptitle(
        f"On-the-fly synthesis: scores of the synthetic slice  TOT {tot}%  GG {g}%  RET {r}%", fontsize=11
    )
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: draw the figure to the given path."""
    p = argparse.ArgumentParser(prog="python -m gohscore.scores.figure", description=__doc__)
    p.add_argument("out", type=Path, nargs="?", default=Path("docs/synthesis.png"))
    p.add_argument("--seed", type=int, default=8)
    args = p.parse_args(argv)
    draw(args.out, seed=args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
