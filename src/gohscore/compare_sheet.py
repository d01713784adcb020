"""The side-by-side QC sheet of a comparison: each level's axial slice at baseline beside follow-up.

Draws only: every number on the sheet comes from the comparison table and summary
(:func:`gohscore.compare.compare_results`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from gohscore.goh import LEVELS, PATTERNS
from gohscore.plots import LEVEL_COLOURS, _save
from gohscore.qc_sheet import LUNG_WINDOW_HU

ARROWS = {"increase": "↑", "decrease": "↓", "no detectable change": "="}


def _scores(table: pd.DataFrame, level: int, column: str) -> str:
    """'TOT 20 GG 15 RET 5' of one side of one level."""
    part = table[table["level"] == level].set_index("pattern")
    return " ".join(f"{p} {part.loc[p, column]:g}" for p in PATTERNS)


def _changes(table: pd.DataFrame, level: int) -> str:
    """'TOT +10↑ GG +5= RET 0=' (change and verdict per pattern) of one level."""
    part = table[table["level"] == level].set_index("pattern")
    return " ".join(f"{p} {part.loc[p, 'change']:+g}{ARROWS[part.loc[p, 'direction']]}" for p in PATTERNS)


def _panel(fig: Figure, cell, image: np.ndarray | None, aspect: float, title: str, colour: str) -> None:
    """One axial slice (or a note that the scan could not be read) with its title."""
    ax = fig.add_subplot(cell)
    if image is None:
        ax.text(0.5, 0.5, "scan not readable", ha="center", va="center", transform=ax.transAxes)
    else:
        lo, hi = LUNG_WINDOW_HU
        ax.imshow(image, cmap="gray", vmin=lo, vmax=hi, aspect=aspect, interpolation="nearest")
    ax.set_title(title, fontsize=8, color=colour)
    ax.set_axis_off()


def comparison_sheet(
    table: pd.DataFrame,
    summary: dict,
    baseline: Sequence[np.ndarray | None],
    followup: Sequence[np.ndarray | None],
    aspects: tuple[float, float],
    out: Path,
) -> Path:
    """Five rows (L1..L5), baseline left and follow-up right, scores and changes in the titles.

    ``baseline`` and ``followup`` are the axial HU slices at the five levels (None where the scan
    could not be read); ``aspects`` the row / column pixel spacing ratio of each scan.
    """
    fig = Figure(figsize=(8.0, 17.0))
    grid = fig.add_gridspec(len(LEVELS), 2, hspace=0.25, wspace=0.05)
    for i, (level, colour) in enumerate(zip(LEVELS, LEVEL_COLOURS, strict=True)):
        _panel(
            fig,
            grid[i, 0],
            baseline[i],
            aspects[0],
            f"L{level} baseline: {_scores(table, level, 'baseline')}",
            colour,
        )
        title = f"L{level} follow-up: {_scores(table, level, 'followup')}\nchange {_changes(table, level)}"
        _panel(fig, grid[i, 1], followup[i], aspects[1], title, colour)
    b, f = summary["baseline"], summary["followup"]
    fig.suptitle(
        f"extent {b['global_extent_percent']:.1f} % ({b['goh_stage']}) -> {f['global_extent_percent']:.1f} % "
        f"({f['goh_stage']}): {summary['global_extent_change']:+.1f} %, {summary['global_extent_direction']} "
        f"(MDC {summary['global_extent_mdc']:.1f} %)"
        + (", stage changed" if summary["stage_changed"] else ", stage unchanged"),
        fontsize=10,
    )
    fig.subplots_adjust(left=0.02, right=0.98, top=0.95, bottom=0.01)
    return _save(fig, out)
