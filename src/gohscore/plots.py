"""Figures of the paper, drawn from tables only (no statistics computed here).

Every function builds its own ``matplotlib.figure.Figure`` (Agg, no pyplot state) and writes
one PNG atomically. Lines and circle sizes come from the tables written by ``gohscore tables``;
the only raw data drawn are the points themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from gohscore.files import atomic_path
from gohscore.goh import LEVELS, PATTERNS

PATTERN_COLOURS: dict[str, str] = {"TOT": "#4c72b0", "GG": "#dd8452", "RET": "#55a868"}
LEVEL_COLOURS: tuple[str, ...] = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd")
DPI = 120


def _save(fig: Figure, out: Path) -> Path:
    """Write ``fig`` as PNG through ``atomic_path``."""
    out = Path(out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    return out


def _row(table: pd.DataFrame, column: str, value: str) -> pd.Series:
    """The one row of ``table`` where ``column == value`` (KeyError if absent)."""
    sel = table[table[column] == value]
    if sel.empty:
        raise KeyError(f"table has no row with {column} == {value!r}")
    return sel.iloc[0]


def _complete_levels(levels: pd.DataFrame) -> pd.DataFrame:
    """Level predictions with both positions present."""
    return levels[levels["pred_index"].notna() & levels["ref_index"].notna()]


def _scatter_levels(ax, data: pd.DataFrame, y: Callable[[pd.DataFrame], pd.Series]) -> None:
    """Points (reference position, ``y(part)``) with one colour per level."""
    for k, colour in zip(LEVELS, LEVEL_COLOURS, strict=True):
        part = data[data["level"] == k]
        ax.scatter(part["ref_index"], y(part), s=12, alpha=0.7, color=colour, label=f"L{k}")


def levels_bland_altman(levels: pd.DataFrame, agreement: pd.DataFrame, out: Path) -> Path:
    """Error (pred - ref, slices) against the reference position, one colour per level; mean and 95 % LoA."""
    data = _complete_levels(levels)
    stats = _row(agreement, "level", "all")
    fig = Figure(figsize=(6.0, 4.5))
    ax = fig.add_subplot()
    _scatter_levels(ax, data, lambda part: part["pred_index"] - part["ref_index"])
    for value, style, name in (
        (stats["mean_error"], "-", "mean"),
        (stats["loa_low"], "--", "-1.96 SD"),
        (stats["loa_high"], "--", "+1.96 SD"),
    ):
        if np.isfinite(value):
            ax.axhline(value, color="0.3", linestyle=style, linewidth=1)
            ax.annotate(
                f"{name}: {value:.2f}",
                xy=(1.0, value),
                xycoords=("axes fraction", "data"),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
            )
    ax.set_xlabel("reference level position (slice)")
    ax.set_ylabel("predicted - reference (slices)")
    ax.set_title("Level positions: Bland–Altman")
    ax.legend(fontsize=8, loc="best", ncols=5)
    return _save(fig, out)


def levels_correlation(levels: pd.DataFrame, agreement: pd.DataFrame, out: Path) -> Path:
    """Predicted against reference positions with the identity (solid) and regression (dashed) lines."""
    data = _complete_levels(levels)
    stats = _row(agreement, "level", "all")
    fig = Figure(figsize=(5.0, 5.0))
    ax = fig.add_subplot()
    _scatter_levels(ax, data, lambda part: part["pred_index"])
    values = np.concatenate([data["ref_index"].to_numpy(float), data["pred_index"].to_numpy(float)])
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    span = np.array([lo, hi])
    ax.plot(span, span, color="k", linewidth=1, label="identity")
    if np.isfinite(stats["slope"]) and np.isfinite(stats["intercept"]):
        ax.plot(
            span,
            stats["slope"] * span + stats["intercept"],
            "k--",
            linewidth=1,
            label=f"y = {stats['slope']:.2f} x + {stats['intercept']:.2f}",
        )
    ax.set_xlabel("reference level position (slice)")
    ax.set_ylabel("predicted level position (slice)")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title("Level positions: correlation")
    ax.legend(fontsize=8, loc="upper left")
    return _save(fig, out)


def scores_scatter(counts: pd.DataFrame, out: Path, title: str = "") -> Path:
    """Reference against predicted score per pattern; circle area grows with the count at each point."""
    fig = Figure(figsize=(13.0, 4.2))
    axes = fig.subplots(1, len(PATTERNS), gridspec_kw={"wspace": 0.3})
    biggest = max(int(counts["count"].max()), 1) if len(counts) else 1
    for ax, p in zip(axes, PATTERNS, strict=True):
        part = counts[counts["pattern"] == p]
        ax.plot([0, 100], [0, 100], color="0.6", linewidth=1)
        ax.scatter(
            part["ref"],
            part["pred"],
            s=10 + 290 * part["count"] / biggest,
            alpha=0.5,
            color=PATTERN_COLOURS[p],
            edgecolors="k",
            linewidths=0.5,
        )
        ax.set_xlim(-5, 105)
        ax.set_ylim(-5, 105)
        ax.set_aspect("equal")
        ax.set_xlabel("reference score (%)")
        ax.set_ylabel("predicted score (%)")
        ax.set_title(p)
    for n in sorted({1, max(biggest // 2, 1), biggest}):
        axes[-1].scatter(
            [], [], s=10 + 290 * n / biggest, color="0.7", edgecolors="k", linewidths=0.5, label=str(n)
        )
    axes[-1].legend(title="levels", fontsize=8, loc="upper left")
    if title:
        fig.suptitle(title)
    return _save(fig, out)


def label_distribution(dist: pd.DataFrame, out: Path) -> Path:
    """Grouped bars: number of slices at each score value, per pattern (Figure 2)."""
    fig = Figure(figsize=(10.0, 4.0))
    ax = fig.add_subplot()
    x = np.arange(len(dist))
    width = 0.8 / len(PATTERNS)
    for i, p in enumerate(PATTERNS):
        ax.bar(x + (i - 1) * width, dist[p], width=width, color=PATTERN_COLOURS[p], label=p)
    ax.set_xticks(x, [str(int(s)) for s in dist["score"]], fontsize=8)
    ax.set_xlabel("score (%)")
    ax.set_ylabel("slices")
    ax.set_title("Label distribution")
    ax.legend()
    return _save(fig, out)


def label_draws(table: pd.DataFrame, out: Path) -> Path:
    """One panel per ablation: the TOT histograms of the training slices, the real draws and the syntheses."""
    ablations = list(dict.fromkeys(table["ablation"]))
    fig = Figure(figsize=(4.2 * len(ablations), 3.6), layout="constrained")  # title clear of the panels
    axes = fig.subplots(1, len(ablations), sharey=True, squeeze=False)[0]
    for ax, ablation in zip(axes, ablations, strict=True):
        part = table[table["ablation"] == ablation]
        x = part["score"].to_numpy()
        ax.bar(x, part["drawn"], width=4.0, color="#4c72b0", label="real, as drawn")
        ax.bar(x, part["synthetic"], width=4.0, bottom=part["drawn"], color="#dd8452", label="synthetic")
        ax.step(x, part["real"], where="mid", color="black", lw=1.2, label="training slices")
        ax.set_title(ablation)
        ax.set_xlabel("TOT (%)")
    axes[0].set_ylabel("share of draws")
    axes[0].legend(fontsize=8)
    fig.suptitle("What the score networks were taught")
    return _save(fig, out)


def ablation_mae(table2: pd.DataFrame, out: Path, source: str | None = None) -> Path:
    """Bars of MAE per pattern and ablation (Table 2), with the SD as error bars and † marks."""
    data = table2
    if source is None and len(table2):
        source = str(table2["source"].iloc[0])
    if source is not None:
        data = table2[table2["source"] == source]
    ablations = list(dict.fromkeys(data["ablation"]))
    fig = Figure(figsize=(7.0, 4.0))
    ax = fig.add_subplot()
    x = np.arange(len(PATTERNS))
    width = 0.8 / max(len(ablations), 1)
    for i, ablation in enumerate(ablations):
        part = data[data["ablation"] == ablation].set_index("pattern").reindex(list(PATTERNS))
        pos = x + (i - (len(ablations) - 1) / 2) * width
        ax.bar(pos, part["mae"], width=width, label=ablation, alpha=0.85)
        ax.errorbar(pos, part["mae"], yerr=part["sd"], fmt="none", ecolor="0.4", elinewidth=0.8, capsize=3)
        tops = (part["mae"] + part["sd"].fillna(0)).to_numpy(float)
        for xp, top, better in zip(pos, tops, part["better"], strict=True):
            if np.isfinite(top) and pd.notna(better):
                ax.annotate("†" if bool(better) else "‡", (xp, top), ha="center", va="bottom", fontsize=11)
    ax.set_xticks(x, list(PATTERNS))
    ax.set_ylabel("MAE (%)")
    ax.set_ylim(bottom=0)
    ax.set_title(f"Score MAE (SD) by ablation (CV{', ' + source if source else ''}); † better than previous")
    ax.legend(fontsize=8)
    return _save(fig, out)


def training_curves(histories: pd.DataFrame, out: Path) -> Path:
    """Training and inner-validation loss per epoch, one panel per network/variant, one line per fold.

    ``histories`` has columns ``network`` (e.g. ``levels``, ``scores/balanced``), ``fold``, ``epoch``,
    ``train_loss`` and ``val_loss`` (the history.parquet files of the training runs, stacked).
    """
    panels = list(dict.fromkeys(histories["network"]))
    fig = Figure(figsize=(4.2 * max(len(panels), 1), 3.4))
    for i, name in enumerate(panels, start=1):
        ax = fig.add_subplot(1, max(len(panels), 1), i)
        val_ax = ax.twinx()  # the two losses may have different units (level net: mm^2 vs mm)
        part = histories[histories["network"] == name]
        for j, (fold, run) in enumerate(part.groupby("fold", sort=True)):
            colour = LEVEL_COLOURS[j % len(LEVEL_COLOURS)]
            ax.plot(run["epoch"], run["train_loss"], color=colour, linewidth=1.0, label=f"fold {fold}")
            val_ax.plot(run["epoch"], run["val_loss"], color=colour, linewidth=1.0, linestyle="--")
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss (solid)")
        val_ax.set_ylabel("validation loss (dashed)")
        ax.set_title(name, fontsize=10)
        if i == 1:
            ax.legend(fontsize=7)
    fig.suptitle("training and inner-validation loss per epoch")
    fig.tight_layout()
    return _save(fig, out)
