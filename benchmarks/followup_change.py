"""Benchmark: measured against true change on synthetic follow-up pairs (``gohscore phantom-pairs``).

Each pair is one synthetic body scanned twice (another slice spacing, field of view, table
position and breath), its disease grown, stable or regressed by a known amount. The script scores
every scan with ``gohscore predict``, compares each pair as ``gohscore compare`` does, and reports:

- the error of the measured change against the true change (the difference of the two scans'
  reference labels), per level score and for the global extent: mean absolute error and bias;
- how often the verdict (increase / decrease / no detectable change) agrees with the true
  direction, where the truth is read with the same floors (5 % per level, 1 % for the extent)
  and no spread;
- how often a stage change (Goh stage without FVC) is found when it happened, and not otherwise.

Run: ``python benchmarks/followup_change.py --models results/demo --pairs results/demo/followup_pairs``
(pairs from the workflow with ``followup: {n_pairs: N}``), or let the script write ``--n-pairs``
pairs itself. Writes ``followup_change.json`` (figures), ``followup_change.csv`` (one row per
pair) and ``followup_change_levels.csv`` (one row per pair, level and pattern) under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from gohscore.compare import EXTENT_FLOOR, LEVEL_FLOOR, compare_results, direction
from gohscore.goh import score_column
from gohscore.phantom.followup import PAIRS_TABLE, FollowupParams, write_pairs
from gohscore.staging import goh_stage

RESULTS = Path(__file__).parent / "results" / "followup"


def score_scans(models: Path, scans: list[Path], out: Path) -> float:
    """``gohscore predict`` on every scan (one process, so the models load once); returns its wall time."""
    start = time.perf_counter()
    cmd = [sys.executable, "-m", "gohscore", "predict", "--models", str(models), "--out-dir", str(out)]
    subprocess.run([*cmd, "--device", "cpu", "--scan", *map(str, scans)], check=True)
    return time.perf_counter() - start


def pair_rows(truth: pd.DataFrame, scored: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per pair (extent, stage) and per pair, level and pattern: true and measured change."""
    pairs, levels = [], []
    for t in truth.itertuples(index=False):
        t = t._asdict()
        table, summary = compare_results(scored / f"{t['pair']}_baseline", scored / f"{t['pair']}_followup")
        for r in table.itertuples():
            true = t[f"{score_column(r.level, r.pattern)}_change"]
            levels.append(
                {
                    "pair": t["pair"],
                    "kind": t["kind"],
                    "level": r.level,
                    "pattern": r.pattern,
                    "true_change": true,
                    "measured_change": r.change,
                    "mdc": r.mdc,
                    "true_direction": direction([true], [LEVEL_FLOOR])[0],
                    "measured_direction": r.direction,
                }
            )
        true_stages = [goh_stage(t["extent_baseline"]), goh_stage(t["extent_followup"])]
        pairs.append(
            {
                "pair": t["pair"],
                "kind": t["kind"],
                "true_extent_baseline": t["extent_baseline"],
                "true_extent_followup": t["extent_followup"],
                "true_change": t["extent_change"],
                "measured_extent_baseline": summary["baseline"]["global_extent_percent"],
                "measured_extent_followup": summary["followup"]["global_extent_percent"],
                "measured_change": summary["global_extent_change"],
                "mdc": summary["global_extent_mdc"],
                "true_direction": direction([t["extent_change"]], [EXTENT_FLOOR])[0],
                "measured_direction": summary["global_extent_direction"],
                "true_stage_changed": true_stages[0] != true_stages[1],
                "measured_stage_changed": summary["stage_changed"],
            }
        )
    return pd.DataFrame(pairs), pd.DataFrame(levels)


def figures(pairs: pd.DataFrame, levels: pd.DataFrame) -> dict:
    """Errors of the change and agreement of the verdicts."""

    def errors(frame: pd.DataFrame) -> dict:
        err = frame["measured_change"] - frame["true_change"]
        agree = frame["true_direction"] == frame["measured_direction"]
        counts = pd.crosstab(frame["true_direction"], frame["measured_direction"])
        return {
            "n": int(len(frame)),
            "change_mae_percent": round(float(err.abs().mean()), 3),
            "change_bias_percent": round(float(err.mean()), 3),
            "direction_agreement": round(float(agree.mean()), 3),
            "direction_counts_true_by_measured": {
                t: {m: int(n) for m, n in counts.loc[t].items()} for t in counts.index
            },
        }

    out = {"extent": errors(pairs), "level_scores": errors(levels)}
    out["extent"]["by_kind"] = {k: errors(part) for k, part in pairs.groupby("kind")}
    stage = pairs["true_stage_changed"] == pairs["measured_stage_changed"]
    out["stage_change_agreement"] = round(float(stage.mean()), 3)
    out["n_true_stage_changes"] = int(pairs["true_stage_changed"].sum())
    scans = [
        (pairs[f"measured_extent_{t}"] - pairs[f"true_extent_{t}"]).abs() for t in ("baseline", "followup")
    ]
    out["extent_mae_per_scan_percent"] = round(float(pd.concat(scans).mean()), 3)
    out["mean_extent_mdc_percent"] = round(float(pairs["mdc"].mean()), 3)
    out["mean_level_mdc_percent"] = round(float(levels["mdc"].mean()), 3)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--models", required=True, type=Path, help="results folder or bundle of trained models"
    )
    parser.add_argument(
        "--pairs", type=Path, help="folder written by gohscore phantom-pairs (scans/, pairs.csv)"
    )
    parser.add_argument("--n-pairs", type=int, default=12, help="pairs to write when --pairs is not given")
    parser.add_argument("--size", default="demo", help="size preset of written pairs")
    parser.add_argument("--seed", type=int, default=2022, help="seed of written pairs")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--note", default="", help="what the models are (recorded with the figures)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="gohscore-followup-") as tmp:
        pairs_dir = args.pairs
        settings = {"models": args.note or str(args.models), "pairs": str(pairs_dir)}
        if pairs_dir is None:
            pairs_dir = write_pairs(FollowupParams(args.n_pairs, args.size), args.seed, Path(tmp) / "pairs")
            settings.update(pairs=None, n_pairs=args.n_pairs, size=args.size, seed=args.seed)
        truth = pd.read_csv(pairs_dir / PAIRS_TABLE)
        scans = sorted((pairs_dir / "scans").iterdir())
        seconds = score_scans(args.models, scans, Path(tmp) / "scored")
        pairs, levels = pair_rows(truth, Path(tmp) / "scored")
    result = {
        "settings": settings,
        "predict_seconds_per_scan": round(seconds / len(scans), 2),
        **figures(pairs, levels),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    pairs.to_csv(args.out / "followup_change.csv", index=False, float_format="%.3f")
    levels.to_csv(args.out / "followup_change_levels.csv", index=False, float_format="%.3f")
    (args.out / "followup_change.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "settings"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
