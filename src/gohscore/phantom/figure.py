"""The realism figure: coronal and sagittal views with the level lines, and each level's axial slice with GG/RET outlined."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gohscore.goh import LEVELS, PATTERNS, score_column, z_column
from gohscore.phantom.cohort import Patient

WINDOW_HU = (-1350, 250)  # width 1600, level -550: lung and mediastinum both readable
LEVEL_COLOURS = ("#4fc3f7", "#81c784", "#ffb74d", "#ba68c8", "#e57373")


def _views(pat: Patient) -> tuple[np.ndarray, np.ndarray, tuple, tuple]:
    """Coronal plane through the trachea and sagittal plane through the right lung, with their extents (mm)."""
    a = pat.anatomy
    c, s = np.cos(a.rotation_rad), np.sin(a.rotation_rad)
    xc, yc = a.body_xy_mm
    x0, y0, z0 = a.origin_xyz_mm
    p, n = a.pixel_mm, a.matrix
    row = int(np.clip(round((yc + c * a.trachea_v - y0) / p), 0, n - 1))
    u = -0.5 * a.cav_a
    col = int(np.clip(round((xc + c * u - s * a.cav_vc - x0) / p), 0, n - 1))
    z_lo, z_hi = z0 - a.slice_mm / 2, z0 + (a.n_slices - 0.5) * a.slice_mm
    coronal = pat.volume[:, row, :]
    sagittal = pat.volume[:, :, col]
    return coronal, sagittal, (x0, x0 + n * p, z_lo, z_hi), (y0, y0 + n * p, z_lo, z_hi)


def draw_figure(patients: list[Patient], out: Path, dpi: int = 70) -> None:
    """Draw the figure for a few generated patients into ``out`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(patients),
        7,
        figsize=(22, 3.5 * len(patients)),
        squeeze=False,
        gridspec_kw={"wspace": 0.04, "hspace": 0.18},
    )
    for r, pat in enumerate(patients):
        a = pat.anatomy
        coronal, sagittal, ext_c, ext_s = _views(pat)
        z_levels = [pat.label[z_column(level)] for level in LEVELS]
        for ax, img, ext, title in (
            (axes[r, 0], coronal, ext_c, "coronal"),
            (axes[r, 1], sagittal, ext_s, "sagittal"),
        ):
            ax.imshow(img, cmap="gray", vmin=WINDOW_HU[0], vmax=WINDOW_HU[1], origin="lower", extent=ext)
            for level, z in zip(LEVELS, z_levels, strict=True):
                ax.axhline(z, color=LEVEL_COLOURS[level - 1], lw=0.8)
                ax.text(ext[0] + 4, z + 2, f"L{level}", color=LEVEL_COLOURS[level - 1], fontsize=8)
            ax.set_title(f"{pat.patient} {title}", fontsize=9, color="white")
            ax.set_axis_off()
        for level, res in zip(LEVELS, pat.levels, strict=True):
            ax = axes[r, 1 + level]
            ax.imshow(res.hu, cmap="gray", vmin=WINDOW_HU[0], vmax=WINDOW_HU[1], interpolation="nearest")
            if res.gg.any():
                ax.contour(res.gg, levels=[0.5], colors=["#ffd54f"], linewidths=0.7)
            if res.ret.any():
                ax.contour(res.ret, levels=[0.5], colors=["#f06292"], linewidths=0.7)
            lab = {p: pat.label[score_column(level, p)] for p in PATTERNS}
            ax.set_title(
                f"L{level} z={pat.label[z_column(level)]:.0f} mm  TOT {lab['TOT']} GG {lab['GG']} RET {lab['RET']}",
                fontsize=8,
                color=LEVEL_COLOURS[level - 1],
            )
            ax.set_axis_off()
        axes[r, 0].text(
            0.0,
            -0.06,
            f"{a.matrix}x{a.matrix}x{a.n_slices}, {a.pixel_mm:.2f} mm pixels, {a.slice_mm} mm slices",
            transform=axes[r, 0].transAxes,
            fontsize=7,
            color="white",
        )
    fig.suptitle(
        "gohscore phantom: levels L1-L5 (lines) and GG (yellow) / RET (pink) outlines, window W1600 L-550",
        fontsize=11,
        color="white",
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    from gohscore.files import atomic_path

    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png", bbox_inches="tight", facecolor="black")
    plt.close(fig)
