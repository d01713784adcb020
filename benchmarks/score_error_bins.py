"""TOT error of each ablation per bin of reference TOT, over a finished run's CV predictions.

Where a score network over- or underestimates: MAE and bias (mean signed error) per bin, on
scores rounded as the tables round them (``gohscore.goh.round_to_5``), per level (the mean of the
level's slices, as ``predict-scores`` writes it). Also the TOT MAE per fold.

    python benchmarks/score_error_bins.py results/validate     # prints markdown tables

This is the table "Why balanced + synthesis is worse than none here" in docs/results.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from gohscore.goh import round_to_5  # noqa: E402

BINS = [(0, 0), (5, 10), (15, 30), (35, 60), (65, 100)]  # reference TOT, both ends included


def cv_predictions(results: Path) -> pd.DataFrame:
    """Every ``scores/<ablation>/fold<k>/predictions.parquet`` of the run, with the rounded TOT error."""
    files = sorted(results.glob("scores/*/fold*/predictions.parquet"))
    if not files:
        raise SystemExit(f"{results}: no scores/*/fold*/predictions.parquet; run the workflow first")
    d = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    return d.assign(error=round_to_5(d["pred_TOT"]) - d["ref_TOT"])


def by_bin(d: pd.DataFrame) -> pd.DataFrame:
    """Rows: bins of reference TOT; columns: levels, then 'MAE / bias' of each ablation."""
    rows = []
    for lo, hi in BINS:
        part = d[(d["ref_TOT"] >= lo) & (d["ref_TOT"] <= hi)]
        row = {"reference TOT": f"{lo}" if lo == hi else f"{lo}–{hi}"}
        row["levels"] = part.groupby("ablation").size().max() if len(part) else 0
        for ablation, e in part.groupby("ablation", sort=False)["error"]:
            row[ablation] = f"{e.abs().mean():.1f} / {e.mean():+.1f}"
        rows.append(row)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    """Print the per-bin and per-fold tables of one run."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", type=Path, help="the run's results folder, e.g. results/validate")
    d = cv_predictions(p.parse_args(argv).results)
    print(by_bin(d).to_markdown(index=False))
    print()
    folds = d.groupby(["ablation", "fold"])["error"].apply(lambda e: e.abs().mean()).unstack()
    print(folds.round(2).to_markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
