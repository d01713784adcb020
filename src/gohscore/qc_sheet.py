"""The QC sheet of one scored scan, for a reader to check the result, and its heat-map file.

One PNG per scan (and, for a batch, one PDF page each):

- left, a coronal view of the original scan with the five level lines;
- one row per level: the level's centre slice at the scan's own resolution in a lung window
  (W1500 / L-600), then, with heat maps, the same slice under the GG and the RET map;
- over each row the level's scores with the fold ensemble's spread (SD) and, where that spread
  passes :mod:`gohscore.uncertainty`'s thresholds, "REVIEW";
- over the sheet the global extent with its spread and the Goh stage.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from gohscore.files import atomic_path
from gohscore.goh import LEVELS, PATTERNS
from gohscore.plots import LEVEL_COLOURS

LUNG_WINDOW_HU = (-1350.0, 150.0)  # W1500 / L-600
MAP_PATTERNS = ("GG", "RET")  # the patterns shown as overlays (TOT is their union)
MAP_CMAP = {"GG": "autumn", "RET": "winter"}
MAP_FLOOR = 0.2  # heat below this share of the slice's maximum is not drawn
MAP_ALPHA = 0.7  # the opacity of the hottest pixels
DPI = 100
MAX_PANEL_PX = 512
FOOTNOTE = (
    "Heat maps (Grad-CAM of the score ensemble) show where the networks' outputs rose, not lesion "
    "outlines. Research use only; models trained on synthetic data are not meant for real scans."
)


def _level_text(row) -> str:
    """The lines beside one level's row: scores and position with their spread, and REVIEW if flagged."""
    lines = [f"L{int(row.level)}"]
    lines += [f"{p} {getattr(row, p):.0f} % (SD {getattr(row, f'{p}_sd'):.1f})" for p in PATTERNS]
    lines.append(f"z {row.z_mm:.1f} mm (SD {row.z_mm_sd:.1f})")
    if bool(row.review):
        lines.append("REVIEW: models disagree")
    return "\n".join(lines)


def _overlay(ax, heat: np.ndarray, cmap: str) -> None:
    """Draw ``heat`` (0..1) over the slice in ``ax``: transparent below :data:`MAP_FLOOR`, more
    opaque as the heat rises, so that the slice stays readable under the map."""
    heat = np.clip(np.asarray(heat, dtype=float), 0.0, 1.0)
    alpha = np.clip((heat - MAP_FLOOR) / (1.0 - MAP_FLOOR), 0.0, 1.0) * MAP_ALPHA
    ax.imshow(heat, cmap=cmap, vmin=0.0, vmax=1.0, alpha=alpha, interpolation="bilinear")


def qc_figure(result: dict) -> Figure:
    """The QC sheet of a :func:`gohscore.cascade.score_scan` result as a matplotlib figure."""
    qc, table, maps = result["qc"], result["table"], result["maps"]
    slices = qc["slices"]
    ny, nx = slices.shape[1:]
    scale = MAX_PANEL_PX / max(ny, nx)  # 1:1 for a 512 matrix; smaller ones shown with bigger pixels
    panel_w, panel_h = nx * scale / DPI, ny * scale / DPI
    image_cols = 1 + (len(MAP_PATTERNS) if maps is not None else 0)
    coronal = qc["coronal"]
    dz, dx = qc["spacing_zx_mm"]
    coronal_w = panel_h * len(LEVELS) * coronal.shape[1] * dx / max(coronal.shape[0] * dz, 1e-6)
    coronal_w = float(np.clip(coronal_w, 2.0, 1.5 * panel_w))
    text_w = 3.4
    width = coronal_w + image_cols * panel_w + text_w + 0.4
    height = len(LEVELS) * (panel_h + 0.3) + 1.0
    fig = Figure(figsize=(width, height), dpi=DPI)
    grid = fig.add_gridspec(
        len(LEVELS),
        2 + image_cols,
        width_ratios=[coronal_w, *[panel_w] * image_cols, text_w],
        hspace=0.12,
        wspace=0.03,
        left=0.01,
        right=0.99,
        top=1 - 1.3 / height,
        bottom=0.35 / height,
    )
    lo, hi = LUNG_WINDOW_HU
    ax = fig.add_subplot(grid[:, 0])
    ax.imshow(
        coronal, cmap="gray", vmin=lo, vmax=hi, origin="lower", aspect=dz / dx, interpolation="bilinear"
    )
    for k, colour in zip(LEVELS, LEVEL_COLOURS, strict=True):
        row = float(qc["level_slices"][k - 1])
        ax.axhline(row, color=colour, linewidth=1.2)
        ax.text(2, row + 1, f"L{k}", color=colour, fontsize=13, fontweight="bold", va="bottom")
    ax.set_title("coronal, original scan", fontsize=13)
    ax.set_axis_off()
    for i, row in enumerate(table.itertuples()):
        colour = "#c00000" if bool(row.review) else LEVEL_COLOURS[i]
        for c in range(image_cols):
            sub = fig.add_subplot(grid[i, 1 + c])
            sub.imshow(slices[i], cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
            if c > 0:
                pattern = MAP_PATTERNS[c - 1]
                if float(getattr(row, pattern)) > 0:
                    _overlay(sub, maps[i, PATTERNS.index(pattern)], MAP_CMAP[pattern])
                    label = f"{pattern} heat map"
                else:
                    label = f"{pattern} 0: no map"
                sub.set_title(label, fontsize=13, loc="left")
            sub.set_axis_off()
        text = fig.add_subplot(grid[i, 1 + image_cols])
        text.text(0.04, 0.5, _level_text(row), color=colour, fontsize=15, va="center", family="monospace")
        text.set_axis_off()
    stage = result["goh_stage"]
    fig.suptitle(
        f"{result['patient']}: global extent {result['global_extent']:.1f} % "
        f"(±{result['global_extent_sd']:.1f}), Goh stage {stage}",
        fontsize=20,
    )
    fig.text(0.01, 0.1 / height, FOOTNOTE, fontsize=12, color="#555555", wrap=True)
    return fig


def qc_sheet(result: dict, out: Path) -> Path:
    """Write the QC sheet of one result as a PNG (atomically); return its path."""
    fig = qc_figure(result)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return Path(out)


def add_page(pdf: PdfPages, result: dict) -> None:
    """Add one scan's sheet as a page of an open multi-page PDF."""
    pdf.savefig(qc_figure(result))


def write_heatmaps(maps: np.ndarray, spacing_yx_mm, out: Path) -> Path:
    """The heat maps ``(5, 3, rows, columns)`` as one NIfTI stack of 15 slices, level-major.

    Slice ``3 * (level - 1) + j`` holds pattern ``j`` of TOT, GG, RET; pixels have the scan's
    in-plane spacing (the slices are not a volume, so z spacing is 1 mm by convention).
    """
    import SimpleITK as sitk

    stack = np.asarray(maps, dtype=np.float32).reshape(-1, *maps.shape[2:])
    image = sitk.GetImageFromArray(stack)
    image.SetSpacing((float(spacing_yx_mm[1]), float(spacing_yx_mm[0]), 1.0))
    with atomic_path(out) as tmp:
        sitk.WriteImage(image, str(tmp), useCompression=True)
    return Path(out)
