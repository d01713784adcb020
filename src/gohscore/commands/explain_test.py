"""``gohscore explain-test``: the score ensemble's heat maps on the test set, checked against the
true lesion masks where the cohort has them (table and figure ``heatmap_validation``)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from gohscore.commands.options import add_machine_options, machine_from_args
from gohscore.files import atomic_path, read_parquet

log = logging.getLogger("gohscore")


def build_parser() -> argparse.ArgumentParser:
    """The command's options."""
    p = argparse.ArgumentParser(prog="gohscore explain-test", description=__doc__)
    p.add_argument("--slices", type=Path, required=True, help="slices/reference folder")
    p.add_argument("--folds", type=Path, required=True, help="folds.parquet (the test set is set == 'test')")
    p.add_argument("--labels", type=Path, required=True, help="ingest/labels.parquet (reference scores)")
    p.add_argument(
        "--models", type=Path, nargs="+", required=True, help="the final ablation's score model.pt files"
    )
    p.add_argument(
        "--masks",
        type=Path,
        default=None,
        help="folder of <patient>.npz lesion masks (optional; none: no validation)",
    )
    p.add_argument(
        "--out-dir", type=Path, required=True, help="folder for metrics.parquet and <patient>.nii.gz maps"
    )
    p.add_argument("--table-dir", type=Path, required=True, help="folder for heatmap_validation.parquet/.md")
    p.add_argument("--figure", type=Path, required=True, help="the heatmap_validation.png to write")
    add_machine_options(p, amp=False, deterministic=False)
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command."""
    import pandas as pd

    from gohscore import heatmap_validation as hv
    from gohscore.cards import check_ensemble, load_model
    from gohscore.goh import PATTERNS, score_column
    from gohscore.heatmap_figure import validation_figure
    from gohscore.lesion_masks import read_masks
    from gohscore.progress import progress
    from gohscore.qc_sheet import write_heatmaps
    from gohscore.reports import HEATMAP_TABLE, write_table
    from gohscore.scores.data import load_slices
    from gohscore.scores.explain import METHOD, explain_slices
    from gohscore.scores.lungmask import lung_mask
    from gohscore.scores.slices import resize_square
    from gohscore.training import select_device

    args = build_parser().parse_args(argv)
    machine = machine_from_args(args)
    folds = read_parquet(args.folds, "folds table", ["patient", "set"])
    patients = sorted(folds.loc[folds["set"] == "test", "patient"].astype(str))
    labels = read_parquet(args.labels, "labels table", ["patient"]).set_index("patient")
    loaded = [load_model(p) for p in args.models]
    card = check_ensemble([c for _, c in loaded], "scores")
    device = select_device(machine.device)
    models = [m for m, _ in loaded]
    size = int(card.input["input_size"])
    metrics, reference, example = [], [], None
    images, index = load_slices(args.slices, patients)
    for patient in progress(patients, "explain-test"):
        centre = index[(index["patient"] == patient) & (index["offset"] == 0)].sort_values("level")
        maps = explain_slices(models, images[centre["image"].to_numpy()], card, device)
        pixel_mm = float(centre["pixel_spacing_mm"].iloc[0])
        write_heatmaps(maps, (pixel_mm, pixel_mm), args.out_dir / f"{patient}.nii.gz")
        for level in centre["level"].astype(int):
            reference.append(
                {
                    "patient": patient,
                    "level": level,
                    **{f"ref_{p}": float(labels.at[patient, score_column(level, p)]) for p in PATTERNS},
                }
            )
        path = args.masks / f"{patient}.npz" if args.masks is not None else None
        if path is None or not path.is_file():
            continue
        masks = read_masks(path)
        for i, row in enumerate(centre.itertuples()):
            k = int(row.level) - 1
            if int(masks.slice_index[k]) != int(row.slice_index):
                log.warning(
                    "%s L%d: masks lie on slice %d, the reference slice is %d; level skipped",
                    path,
                    k + 1,
                    int(masks.slice_index[k]),
                    int(row.slice_index),
                )
                continue
            stack = np.stack([masks.lung[k], *(masks.pattern(p)[k] for p in PATTERNS)]).astype(np.float32)
            grid, _ = resize_square(stack, masks.spacing_yx_mm, size, fill=0.0)
            grid = grid > 0.5
            image = images[int(row.image)].astype(np.float32)
            estimated = lung_mask(image)
            by_pattern = dict(zip(PATTERNS, grid[1:], strict=True))
            metrics += hv.level_rows(patient, k + 1, maps[i], by_pattern, grid[0], estimated)
            if example is None or by_pattern["TOT"].sum() > example[4]["TOT"].sum():
                example = (patient, k + 1, image, maps[i], by_pattern)  # the largest lesion is shown
    table_rows = pd.DataFrame(metrics)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    ref = pd.DataFrame(reference)
    if len(table_rows):
        summary = hv.summary_table(table_rows, ref)
        notes = [
            f"Heat maps: {METHOD} of the final score ensemble ({len(models)} models) at each test patient's "
            "reference levels (centre slice), on the networks' input grid.",
            f"Metrics over levels whose true mask holds at least {hv.MIN_MASK_PIXELS} pixels; "
            "lung_mask is the trivial map (the true lung, flat).",
            f"Map score: % of the estimated lung where the in-lung map reaches {hv.MAP_SCORE_THRESHOLD} "
            "of its maximum, against the reference score of every test level.",
        ]
    else:
        summary = pd.DataFrame(columns=["pattern", "method", "n_levels", *hv.METRIC_COLUMNS])
        notes = ["This cohort has no lesion masks (masks/<patient>.npz), so the maps cannot be checked."]
    with atomic_path(args.out_dir / "metrics.parquet") as tmp:
        (table_rows if len(table_rows) else pd.DataFrame(columns=["patient"])).to_parquet(tmp, index=False)
    write_table(
        summary,
        args.table_dir,
        HEATMAP_TABLE,
        "Heat maps against the true lesion masks (test set)",
        notes=notes,
    )
    validation_figure(summary, example, args.figure)
    return 0
