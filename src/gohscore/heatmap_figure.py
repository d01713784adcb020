"""The figure of the heat-map validation: the metrics per pattern and map, and one example level."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from gohscore.files import atomic_path
from gohscore.goh import PATTERNS
from gohscore.qc_sheet import LUNG_WINDOW_HU

METRIC_TITLES = {
    "energy_in_mask": "energy in mask",
    "pointing_game": "pointing game (hit rate)",
    "pixel_auc": "pixel AUC in the lung",
}
METHOD_COLOURS = {"gradcam": "#4c72b0", "gradcam_in_lung": "#55a868", "lung_mask": "#999999"}


def validation_figure(summary: pd.DataFrame, example: tuple | None, out: Path) -> Path:
    """Bars of each metric per pattern and map (``summary``: :func:`heatmap_validation.summary_table`),
    and the example level's slice with its GG and RET maps and the true outlines.

    ``example`` is ``(patient, level, slice, maps (3, H, W), masks by pattern)`` or None.
    """
    fig = Figure(figsize=(16.0, 4.2))
    grid = fig.add_gridspec(1, 6, width_ratios=[1, 1, 1, 0.9, 0.9, 0.9], wspace=0.35)
    if summary.empty:
        ax = fig.add_subplot(grid[0, :])
        ax.text(0.5, 0.5, "no lesion masks in this cohort: the heat maps cannot be checked", ha="center")
        ax.set_axis_off()
    else:
        methods = list(dict.fromkeys(summary["method"]))
        x = np.arange(len(PATTERNS))
        width = 0.8 / max(len(methods), 1)
        for i, (metric, title) in enumerate(METRIC_TITLES.items()):
            ax = fig.add_subplot(grid[0, i])
            for m, method in enumerate(methods):
                sel = summary[summary["method"] == method].set_index("pattern").reindex(PATTERNS)
                ax.bar(
                    x + (m - (len(methods) - 1) / 2) * width,
                    sel[metric],
                    width,
                    label=method,
                    color=METHOD_COLOURS.get(method),
                )
            ax.set_xticks(x, PATTERNS)
            ax.set_ylim(0, 1)
            ax.set_title(title, fontsize=10)
            if i == 0:
                ax.legend(fontsize=7, loc="upper left")
    if example is not None:
        patient, level, image, maps, masks = example
        panels = [
            ("slice, true GG (yellow) and RET (red)", None),
            ("GG heat map", "GG"),
            ("RET heat map", "RET"),
        ]
        for i, (title, pattern) in enumerate(panels):
            ax = fig.add_subplot(grid[0, 3 + i])
            ax.imshow(image, cmap="gray", vmin=LUNG_WINDOW_HU[0], vmax=LUNG_WINDOW_HU[1])
            if pattern is not None:
                ax.imshow(
                    np.ma.masked_less(maps[PATTERNS.index(pattern)], 0.2),
                    cmap="inferno",
                    vmin=0,
                    vmax=1,
                    alpha=0.6,
                )
            ax.contour(masks["GG"], levels=[0.5], colors="yellow", linewidths=0.6)
            ax.contour(masks["RET"], levels=[0.5], colors="red", linewidths=0.6)
            ax.set_title(f"{patient} L{level}: {title}" if i == 0 else title, fontsize=8)
            ax.set_axis_off()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    return Path(out)
