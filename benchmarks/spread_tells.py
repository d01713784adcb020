"""Benchmark: does the fold ensemble's spread tell which predictions are wrong?

For every test patient of a finished run, the scan is scored as ``gohscore predict`` scores it
(:func:`gohscore.cascade.score_scan`, the fold ensemble of the final ablation), and each level's
spread (SD across the models) is set against its error from the reference labels:

- the level position: SD (mm) against |predicted - reference z| (mm);
- each score: SD (%) against |predicted - reference| (%), at the predicted levels;
- the Spearman correlation of spread with absolute error, per quantity;
- the mean absolute errors of the levels flagged "review" and of the others.

Only the test set counts: every fold model has seen the cross-validation patients in training,
except one, so their spread would be that of models that know the answer.

Run: ``python benchmarks/spread_tells.py --results results/demo`` (minutes on the CPU); writes
``benchmarks/results/spread_tells_<run>.json`` and prints the figures.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

RESULTS = Path(__file__).parent / "results"


def level_errors(results: Path, device_name: str) -> pd.DataFrame:
    """One row per test patient and level: spreads, absolute errors and the review flag."""
    from gohscore.cascade import find_models, load_models, score_scan
    from gohscore.goh import PATTERNS, score_column, z_column
    from gohscore.progress import progress
    from gohscore.settings import section_defaults
    from gohscore.training import select_device

    device = select_device(device_name)
    levels, scores = find_models(results, section_defaults("scores")["final_ablation"])
    models = load_models(levels, scores, device)
    folds = pd.read_parquet(results / "folds.parquet")
    manifest = pd.read_parquet(results / "ingest" / "manifest.parquet").set_index("patient")
    labels = pd.read_parquet(results / "ingest" / "labels.parquet").set_index("patient")
    test = sorted(folds.loc[folds["set"] == "test", "patient"].astype(str))
    rows = []
    for patient in progress(test, "test scans"):
        table = score_scan(Path(manifest.at[patient, "path"]), patient, models, device)["table"]
        for r in table.itertuples():
            row = {
                "patient": patient,
                "level": int(r.level),
                "review": bool(r.review),
                "z_sd_mm": float(r.z_mm_sd),
                "z_abs_error_mm": abs(float(r.z_mm) - float(labels.at[patient, z_column(int(r.level))])),
            }
            for p in PATTERNS:
                ref = float(labels.at[patient, score_column(int(r.level), p)])
                row[f"{p}_sd"] = float(getattr(r, f"{p}_sd"))
                row[f"{p}_abs_error"] = abs(float(getattr(r, p)) - ref)
            rows.append(row)
    return pd.DataFrame(rows)


def summarise(frame: pd.DataFrame) -> dict:
    """Spearman correlations of spread with error, and the errors of flagged against other levels."""
    from scipy.stats import spearmanr

    from gohscore.goh import PATTERNS

    pairs = {"position_mm": ("z_sd_mm", "z_abs_error_mm")}
    pairs.update({p: (f"{p}_sd", f"{p}_abs_error") for p in PATTERNS})
    out: dict = {"levels": len(frame), "flagged": int(frame["review"].sum())}
    for name, (sd, err) in pairs.items():
        rho = spearmanr(frame[sd], frame[err]).statistic if frame[sd].nunique() > 1 else float("nan")
        flagged, other = frame.loc[frame["review"], err], frame.loc[~frame["review"], err]
        out[name] = {
            "spearman_sd_vs_abs_error": round(float(rho), 3),
            "mae_flagged": round(float(flagged.mean()), 2) if len(flagged) else None,
            "mae_not_flagged": round(float(other.mean()), 2) if len(other) else None,
            "mean_sd": round(float(frame[sd].mean()), 2),
        }
    return out


def main() -> None:
    """Score the test set, summarise and record."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", type=Path, required=True, help="a finished run's results folder")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    from gohscore.uncertainty import REVIEW_SD_MM, REVIEW_SD_PERCENT

    frame = level_errors(args.results, args.device)
    record = {
        "results": str(args.results),
        "thresholds": {"review_sd_mm": REVIEW_SD_MM, "review_sd_percent": REVIEW_SD_PERCENT},
        **summarise(frame),
        "per_level": json.loads(frame.round(3).to_json(orient="records")),
    }
    print(json.dumps({k: v for k, v in record.items() if k != "per_level"}, indent=1))
    out = RESULTS / f"spread_tells_{args.results.name}.json"
    out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
