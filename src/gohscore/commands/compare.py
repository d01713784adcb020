"""``gohscore compare``: a follow-up CT against a baseline (change per level and pattern, extent, stage, QC sheet)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from gohscore.errors import GohscoreError
from gohscore.files import atomic_path
from gohscore.result_folder import LEVELS_NAME, is_result

log = logging.getLogger("gohscore")

TABLE_NAME = "comparison.csv"
SUMMARY_NAME = "comparison.json"
SHEET_NAME = "comparison_qc.png"


def scored(entry: Path, role: str, args: argparse.Namespace) -> Path:
    """The result folder of ``entry``: itself, or a fresh ``gohscore predict`` run under ``out/role``."""
    if is_result(entry):
        return entry
    if args.models is None:
        raise GohscoreError(
            f"--{role} {entry} is not a result folder of gohscore predict (levels.csv, summary.json); "
            "to score it as a scan, give --models RESULTS_DIR_OR_BUNDLE"
        )
    from gohscore.commands.predict import main as predict
    from gohscore.commands.predict import result_id

    out = args.out_dir / role
    argv = [
        "--scan",
        str(entry),
        "--models",
        str(args.models),
        "--out-dir",
        str(out),
        "--device",
        args.device,
    ]
    predict(argv + (["--fvc", str(getattr(args, f"{role}_fvc"))] if getattr(args, f"{role}_fvc") else []))
    return out / result_id(entry)


def level_slices(scan: str | None, original_slices: list[int]) -> tuple[list[np.ndarray | None], float]:
    """The axial HU slices of ``scan`` at the given original slice numbers (from the bottom) and the pixel aspect."""
    from gohscore import io

    if not scan or not Path(scan).exists():
        log.warning("%s: scan not found; the QC sheet shows no images for it", scan)
        return [None] * len(original_slices), 1.0
    try:
        image = io.read_scan(scan).image
    except GohscoreError as err:
        log.warning("%s; the QC sheet shows no images for it", err)
        return [None] * len(original_slices), 1.0
    array = io.lps_array(image)
    spacing = io.lps_geometry(image)["lps_spacing_xyz_mm"]
    k = np.clip(np.asarray(original_slices, int), 0, array.shape[0] - 1)
    return [np.array(array[i]) for i in k], spacing[1] / spacing[0]


def main(argv: list[str] | None = None) -> int:
    """Compare two scored scans (result folders, or scans scored on the way) and write the comparison."""
    parser = argparse.ArgumentParser(prog="gohscore compare", description=__doc__)
    parser.add_argument(
        "--baseline", required=True, type=Path, help="result folder of gohscore predict, or a scan"
    )
    parser.add_argument(
        "--followup", required=True, type=Path, help="result folder of gohscore predict, or a scan"
    )
    parser.add_argument(
        "--out-dir", required=True, type=Path, help="comparison.csv, comparison.json, comparison_qc.png"
    )
    parser.add_argument(
        "--models", type=Path, help="results folder or bundle, to score scans given as inputs"
    )
    parser.add_argument(
        "--baseline-fvc", type=float, help="FVC %% predicted at baseline (when scoring a scan)"
    )
    parser.add_argument(
        "--followup-fvc", type=float, help="FVC %% predicted at follow-up (when scoring a scan)"
    )
    parser.add_argument(
        "--device", default="auto", choices=("auto", "cpu", "cuda"), help="when scoring scans"
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)

    import pandas as pd

    from gohscore.compare import compare_results
    from gohscore.compare_sheet import comparison_sheet

    baseline = scored(args.baseline, "baseline", args)
    followup = scored(args.followup, "followup", args)
    table, summary = compare_results(baseline, followup)
    with atomic_path(args.out_dir / TABLE_NAME) as tmp:
        table.to_csv(tmp, index=False, float_format="%.3f")
    with atomic_path(args.out_dir / SUMMARY_NAME) as tmp:
        tmp.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    images, aspects = [], []
    for folder, side in ((baseline, "baseline"), (followup, "followup")):
        rows = pd.read_csv(folder / LEVELS_NAME).sort_values("level")
        slices, aspect = level_slices(summary[side]["scan"], rows["original_slice"].astype(int).tolist())
        images.append(slices)
        aspects.append(aspect)
    comparison_sheet(
        table, summary, images[0], images[1], (aspects[0], aspects[1]), args.out_dir / SHEET_NAME
    )
    log.info(
        "extent %+.1f %% (%s, MDC %.1f %%); stage %s -> %s",
        summary["global_extent_change"],
        summary["global_extent_direction"],
        summary["global_extent_mdc"],
        summary["stage_baseline"],
        summary["stage_followup"],
    )
    return 0
